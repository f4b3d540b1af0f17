use super::*;

fn child(id: &str, given: &str, surname: &str, dob: &str, nhs: &str) -> pb::ProjectedChild {
    pb::ProjectedChild {
        record_id: id.into(),
        given_names: given.into(),
        surname: surname.into(),
        date_of_birth: dob.into(),
        nhs_number: nhs.into(),
        postcode: "E1 6AN".into(),
        plan_status: "active".into(),
        ..Default::default()
    }
}

fn date(s: &str) -> Option<NaiveDate> {
    s.parse().ok()
}

fn matcher() -> Matcher {
    let mut ollie = child(
        "C1",
        "Oliver James",
        "Smith-Jones",
        "2015-03-04",
        "9000000009",
    );
    ollie.other_names = vec!["Ollie Smith".into()];
    let sister = child("C2", "Amelia", "Smith-Jones", "2017-06-20", "");
    let twin = child("C3", "Grace", "Smith-Jones", "2015-03-04", "");
    let other = child("C4", "Muhammad", "Hussain", "2012-11-30", "");
    Matcher::new(
        [ollie, sister, twin, other]
            .into_iter()
            .map(|c| ("la1".to_owned(), c))
            .collect(),
    )
}

fn query(given: &str, surname: &str, dob: &str) -> Query {
    Query {
        given: given.into(),
        surname: surname.into(),
        dob: date(dob),
        ..Default::default()
    }
}

fn ids(found: &[Candidate]) -> Vec<(&str, Confidence)> {
    found
        .iter()
        .map(|c| (c.child.record_id.as_str(), c.confidence))
        .collect()
}

#[test]
fn exact_name_and_date_is_a_match() {
    let found = matcher().find(&query("Oliver", "Smith-Jones", "2015-03-04"));
    assert_eq!(found[0].child.record_id, "C1");
    assert_eq!(found[0].confidence, Confidence::Match);
    assert!(found[0].reasons.contains(&"date of birth exact".to_owned()));
}

#[test]
fn nickname_one_half_of_the_surname_and_swapped_date_still_find_the_child() {
    let found = matcher().find(&query("ollie", "JONES", "2015-04-03"));
    assert_eq!(ids(&found)[0], ("C1", Confidence::Match));
    let found = matcher().find(&query("Mohammed", "Hussein", "2012-11-30"));
    assert_eq!(ids(&found)[0], ("C4", Confidence::Match));
    assert!(
        found[0]
            .reasons
            .iter()
            .any(|r| r == "Mohammed is another spelling of Muhammad")
    );
}

#[test]
fn sibling_at_the_same_address_is_not_presented() {
    let found = matcher().find(&query("Amelia", "Smith-Jones", "2017-06-20"));
    assert_eq!(ids(&found), [("C2", Confidence::Match)]);
    let found = matcher().find(&query("Grace", "Smith-Jones", "2015-03-04"));
    assert_eq!(ids(&found)[0], ("C3", Confidence::Match));
    assert!(!ids(&found).contains(&("C1", Confidence::Match)));
}

#[test]
fn nhs_number_alone_is_a_match_and_absent_child_finds_nothing() {
    let m = matcher();
    let found = m.find(&Query {
        surname: "Smyth".into(),
        nhs: Some("900 000 0009".into()),
        ..Default::default()
    });
    assert_eq!(ids(&found), [("C1", Confidence::Match)]);
    assert!(m.find(&query("Jack", "Brown", "2015-03-04")).is_empty());
}

#[test]
fn twins_who_both_fit_a_nickname_are_neither_a_match() {
    let oliver = child("C1", "Oliver", "Smith", "2015-03-04", "");
    let olivia = child("C2", "Olivia", "Smith", "2015-03-04", "");
    let m = Matcher::new(vec![("la1".into(), oliver), ("la1".into(), olivia)]);
    let found = m.find(&query("Ollie", "Smith", "2015-03-04"));
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|c| c.confidence == Confidence::Possible));
    assert!(
        found[0]
            .reasons
            .iter()
            .any(|r| r.contains("check the NHS number"))
    );
}
