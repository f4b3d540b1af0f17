//! How well lookups find the child asked about: a synthetic register of 20,000 children, the
//! children on a plan projected as a replica holds them, and queries made the ways people get a
//! child's details wrong. Run with `--nocapture` to see the table.
//!
//! Goals: the right child found for at least 99.5 % of queries; a child not on the register
//! brings up any candidate at most 1 % of the time; a brother or sister is never presented as a
//! match for the child asked about.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{Datelike, Days, NaiveDate};
use cpreg::synthetic::{Generator, SyntheticChild};
use cpreg_proto::pb;
use cpreg_replica::matching::{Confidence, Matcher, Query};

const REGISTER: usize = 20_000;
const PER_VARIATION: usize = 300;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).expect("a date")
}

/// A small deterministic generator for picking and spoiling details (splitmix64).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn gender(g: &str) -> pb::Gender {
    match g {
        "male" => pb::Gender::Male,
        "female" => pb::Gender::Female,
        "unknown" => pb::Gender::Unknown,
        _ => pb::Gender::Unspecified,
    }
}

fn has_plan(c: &SyntheticChild) -> bool {
    !c.plan_start_date.is_empty()
}

/// The projection the simple way: a replica holds children with a plan.
fn project(c: &SyntheticChild) -> pb::ProjectedChild {
    let unborn = !c.expected_delivery_date.is_empty();
    pb::ProjectedChild {
        record_id: c.record_id.clone(),
        given_names: c.given_names.clone(),
        surname: c.surname.clone(),
        other_names: c.other_names.clone(),
        date_of_birth: c.date_of_birth.clone(),
        gender: gender(&c.gender).into(),
        nhs_number: c.nhs_number.clone(),
        address: c.address.clone(),
        postcode: c.postcode.clone(),
        plan_status: if unborn { "unborn" } else { "active" }.into(),
        plan_start_date: c.plan_start_date.clone(),
        unborn: unborn.then(|| pb::Unborn {
            expected_delivery_date: c.expected_delivery_date.clone(),
            mother_given_names: c.mother_given_names.clone(),
            mother_surname: c.mother_surname.clone(),
            mother_date_of_birth: c.mother_date_of_birth.clone(),
            mother_nhs_number: c.mother_nhs_number.clone(),
        }),
        lead_social_worker: c.lead_social_worker.clone(),
        lead_social_worker_phone: c.lead_social_worker_phone.clone(),
        ..Default::default()
    }
}

struct Register {
    all: Vec<SyntheticChild>,
    projected: Vec<SyntheticChild>,
    matcher: Matcher,
}

fn register() -> &'static Register {
    static REGISTER_ONCE: OnceLock<Register> = OnceLock::new();
    REGISTER_ONCE.get_or_init(|| {
        let all = Generator::new(7, today()).children(REGISTER);
        let projected: Vec<SyntheticChild> = all.iter().filter(|c| has_plan(c)).cloned().collect();
        let matcher = Matcher::new(
            projected
                .iter()
                .map(|c| ("la-test".to_owned(), project(c)))
                .collect(),
        );
        Register {
            all,
            projected,
            matcher,
        }
    })
}

fn dob(c: &SyntheticChild) -> Option<NaiveDate> {
    c.date_of_birth.parse().ok()
}

fn first(given: &str) -> &str {
    given.split_whitespace().next().unwrap_or("")
}

fn base(c: &SyntheticChild) -> Query {
    Query {
        given: c.given_names.clone(),
        surname: c.surname.clone(),
        dob: dob(c),
        ..Default::default()
    }
}

/// One slip of the keyboard: two letters swapped, one dropped, doubled or struck wrongly.
fn typo(word: &str, dice: &mut Dice) -> Option<String> {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 3 {
        return None;
    }
    for _ in 0..10 {
        let mut out = chars.clone();
        let i = 1 + dice.below(chars.len() - 1);
        match dice.below(4) {
            0 if i + 1 < out.len() => out.swap(i, i + 1),
            1 => {
                out.remove(i);
            }
            2 => out.insert(i, out[i]),
            _ => out[i] = char::from(b'a' + dice.below(26) as u8),
        }
        let out: String = out.into_iter().collect();
        if out.to_lowercase() != word.to_lowercase() && out.chars().all(char::is_alphabetic) {
            return Some(out);
        }
    }
    None
}

/// Short forms people use, written independently of the replica's own tables.
const NICKNAMES: &[(&str, &str)] = &[
    ("William", "Bill"),
    ("William", "Billy"),
    ("William", "Will"),
    ("Oliver", "Ollie"),
    ("Thomas", "Tom"),
    ("Alexander", "Alex"),
    ("Alexander", "Sasha"),
    ("Elizabeth", "Beth"),
    ("Elizabeth", "Liz"),
    ("Katherine", "Kate"),
    ("Samuel", "Sam"),
    ("Joseph", "Joe"),
    ("Daniel", "Danny"),
    ("Jacob", "Jake"),
    ("Henry", "Harry"),
    ("Harry", "Henry"),
    ("Jack", "John"),
    ("Alfie", "Alfred"),
    ("Freddie", "Frederick"),
    ("Frederick", "Fred"),
    ("Charlotte", "Lottie"),
    ("Isabella", "Bella"),
    ("Olivia", "Liv"),
    ("Jessica", "Jess"),
    ("Rebecca", "Becky"),
    ("Victoria", "Tori"),
    ("Teddy", "Edward"),
    ("Theodore", "Theo"),
    ("Benjamin", "Ben"),
    ("James", "Jim"),
    ("Jamie", "James"),
    ("Matthew", "Matt"),
    ("Michael", "Mike"),
    ("Nathaniel", "Nate"),
    ("Joshua", "Josh"),
    ("Archie", "Archibald"),
    ("Reggie", "Reginald"),
    ("Ronnie", "Ronald"),
    ("Albie", "Albert"),
    ("Ellie", "Eleanor"),
    ("Millie", "Amelia"),
    ("Sophie", "Sophia"),
    ("Evie", "Evelyn"),
    ("Tilly", "Matilda"),
    ("Charlie", "Charles"),
    ("Tommy", "Thomas"),
    ("Margaret", "Peggy"),
    ("Robert", "Bob"),
    ("Alexandra", "Sasha"),
];

/// Other spellings people write, independently of the replica's own tables.
const SPELLINGS: &[&[&str]] = &[
    &["Mohammed", "Muhammad", "Mohamed", "Mohammad", "Muhammed"],
    &["Ahmed", "Ahmad"],
    &["Hussein", "Hussain", "Husain"],
    &["Aisha", "Ayesha"],
    &["Fatima", "Fatimah"],
    &["Yusuf", "Yousef", "Youssef"],
    &["Maryam", "Mariam"],
    &["Khadija", "Khadijah"],
    &["Ibrahim", "Ebrahim"],
    &["Zakariya", "Zakaria"],
    &["Niamh", "Neve"],
    &["Siobhán", "Shivaun"],
    &["Seán", "Shaun"],
    &["Ciarán", "Kieran"],
    &["Caoimhe", "Keeva"],
    &["Oleksandr", "Aleksandr"],
    &["Chowdhury", "Choudhury"],
    &["Rahman", "Rehman"],
    &["Mahmood", "Mehmood"],
];

fn spelling_of(word: &str, dice: &mut Dice) -> Option<String> {
    let group = SPELLINGS.iter().find(|g| g.contains(&word))?;
    let others: Vec<&&str> = group.iter().filter(|w| **w != word).collect();
    Some((*others[dice.below(others.len())]).to_owned())
}

/// The name as a system without accents would hold it; `None` for a name with none, or one the
/// generator's table cannot make plain.
fn strip_accents(name: &str) -> Option<String> {
    if name.is_ascii() {
        return None;
    }
    let out = cpreg::synthetic::without_diacritics(name);
    out.is_ascii().then_some(out)
}

fn swap_day_month(d: NaiveDate) -> Option<NaiveDate> {
    if d.day() > 12 || d.day() == d.month() {
        return None;
    }
    NaiveDate::from_ymd_opt(d.year(), d.day(), d.month())
}

/// One way of asking: a query made from a child on the register, or `None` where it does not
/// apply to that child.
type Variation = fn(&SyntheticChild, &mut Dice) -> Option<Query>;

fn variations() -> Vec<(&'static str, Variation)> {
    vec![
        ("exact", |c, _| Some(base(c))),
        ("case, spaces, punctuation", |c, _| {
            let mut q = base(c);
            q.given = format!("  {}  ", c.given_names.to_lowercase());
            q.surname = c.surname.to_uppercase().replace(['-', '\''], " ");
            Some(q)
        }),
        ("diacritics stripped", |c, _| {
            let (g, s) = (strip_accents(&c.given_names), strip_accents(&c.surname));
            if g.is_none() && s.is_none() {
                return None;
            }
            let mut q = base(c);
            q.given = g.unwrap_or(q.given);
            q.surname = s.unwrap_or(q.surname);
            Some(q)
        }),
        ("typo in surname", |c, d| {
            let mut q = base(c);
            q.surname = typo(&c.surname, d)?;
            Some(q)
        }),
        ("typo in given name", |c, d| {
            let mut q = base(c);
            q.given = typo(first(&c.given_names), d)?;
            Some(q)
        }),
        ("nickname", |c, d| {
            let options: Vec<_> = NICKNAMES
                .iter()
                .filter(|(full, _)| *full == first(&c.given_names))
                .collect();
            if options.is_empty() {
                return None;
            }
            let mut q = base(c);
            q.given = options[d.below(options.len())].1.to_owned();
            Some(q)
        }),
        ("transliteration", |c, d| {
            let mut q = base(c);
            if let Some(g) = spelling_of(first(&c.given_names), d) {
                q.given = g;
            } else {
                q.surname = spelling_of(&c.surname, d)?;
            }
            Some(q)
        }),
        ("other known name", |c, d| {
            if c.other_names.is_empty() {
                return None;
            }
            let alias = &c.other_names[d.below(c.other_names.len())];
            let mut q = base(c);
            if let Some(given) = alias.strip_suffix(&format!(" {}", c.surname)) {
                q.given = given.to_owned();
            } else if let Some(surname) = alias.strip_prefix(&format!("{} ", c.given_names)) {
                q.surname = surname.to_owned();
            } else {
                let (g, s) = alias.rsplit_once(' ')?;
                q.given = g.to_owned();
                q.surname = s.to_owned();
            }
            Some(q)
        }),
        ("one half of double-barrelled surname", |c, d| {
            let (a, b) = c.surname.split_once('-')?;
            let mut q = base(c);
            q.surname = if d.below(2) == 0 { a } else { b }.to_owned();
            Some(q)
        }),
        ("middle name given first", |c, _| {
            let middle = c.given_names.split_whitespace().nth(1)?;
            let mut q = base(c);
            q.given = middle.to_owned();
            Some(q)
        }),
        ("day and month swapped", |c, _| {
            let mut q = base(c);
            q.dob = Some(swap_day_month(dob(c)?)?);
            Some(q)
        }),
        ("date one or two days out", |c, d| {
            let mut q = base(c);
            let days = Days::new(1 + d.below(2) as u64);
            q.dob = if d.below(2) == 0 {
                dob(c)?.checked_add_days(days)
            } else {
                dob(c)?.checked_sub_days(days)
            };
            Some(q)
        }),
        ("NHS number with surname only", |c, _| {
            if c.nhs_number.is_empty() {
                return None;
            }
            Some(Query {
                surname: c.surname.clone(),
                nhs: Some(c.nhs_number.clone()),
                ..Default::default()
            })
        }),
        ("names, postcode and year of birth", |c, _| {
            let mut q = base(c);
            q.year_of_birth = q.dob.map(|d| d.year());
            q.dob = None;
            q.postcode = Some(c.postcode.to_lowercase().replace(' ', ""));
            Some(q)
        }),
    ]
}

#[derive(Default)]
struct Tally {
    queries: usize,
    found: usize,
    as_match: usize,
}

impl Tally {
    fn pct(n: usize, of: usize) -> f64 {
        if of == 0 {
            0.0
        } else {
            100.0 * n as f64 / of as f64
        }
    }
}

/// Runs every variation over children on the register; returns the table rows and the total.
fn evaluate_known() -> (Vec<(&'static str, Tally)>, Tally) {
    let reg = register();
    let born: Vec<&SyntheticChild> = reg
        .projected
        .iter()
        .filter(|c| !c.date_of_birth.is_empty() && !c.given_names.is_empty())
        .collect();
    let mut dice = Dice(2026);
    let mut rows = Vec::new();
    let mut total = Tally::default();
    for (name, make) in variations() {
        let mut tally = Tally::default();
        let mut tries = 0;
        while tally.queries < PER_VARIATION && tries < 200 * PER_VARIATION {
            tries += 1;
            let child = born[dice.below(born.len())];
            let Some(query) = make(child, &mut dice) else {
                continue;
            };
            let found = reg.matcher.find(&query);
            let hit = found.iter().find(|c| c.child.record_id == child.record_id);
            tally.queries += 1;
            tally.found += usize::from(hit.is_some());
            tally.as_match += usize::from(hit.is_some_and(|c| c.confidence == Confidence::Match));
            if hit.is_none() && std::env::var_os("CPREG_SHOW_MISSES").is_some() {
                println!("miss [{name}] {query:?} for {child:?}");
            }
        }
        total.queries += tally.queries;
        total.found += tally.found;
        total.as_match += tally.as_match;
        rows.push((name, tally));
    }
    // Unborn children, by the mother's details.
    let mut tally = Tally::default();
    for child in reg
        .projected
        .iter()
        .filter(|c| !c.expected_delivery_date.is_empty())
    {
        let query = Query {
            surname: child.mother_surname.clone(),
            mother: Some(cpreg_replica::matching::MotherQuery {
                given: child.mother_given_names.clone(),
                surname: child.mother_surname.clone(),
                dob: child.mother_date_of_birth.parse().ok(),
                nhs: None,
            }),
            ..Default::default()
        };
        let found = reg.matcher.find(&query);
        let hit = found.iter().find(|c| c.child.record_id == child.record_id);
        tally.queries += 1;
        tally.found += usize::from(hit.is_some());
        tally.as_match += usize::from(hit.is_some_and(|c| c.confidence == Confidence::Match));
    }
    total.queries += tally.queries;
    total.found += tally.found;
    total.as_match += tally.as_match;
    rows.push(("unborn, by the mother's details", tally));
    (rows, total)
}

/// Children not on the register: from another seed, with no child held under the same name
/// and date of birth.
fn evaluate_absent() -> Tally {
    let reg = register();
    let held: HashSet<(String, String)> = reg
        .projected
        .iter()
        .map(|c| {
            (
                cpreg_proto::names::normalise(&c.surname),
                c.date_of_birth.clone(),
            )
        })
        .collect();
    let strangers = Generator::new(99, today()).children(1_500);
    let mut tally = Tally::default();
    for c in strangers.iter().filter(|c| {
        !c.date_of_birth.is_empty()
            && !c.given_names.is_empty()
            && !held.contains(&(
                cpreg_proto::names::normalise(&c.surname),
                c.date_of_birth.clone(),
            ))
    }) {
        let found = reg.matcher.find(&base(c));
        if std::env::var_os("CPREG_SHOW_MISSES").is_some() {
            for f in &found {
                println!(
                    "absent {} {} {} -> {} {} {} {:?} {:?}",
                    c.given_names,
                    c.surname,
                    c.date_of_birth,
                    f.child.given_names,
                    f.child.surname,
                    f.child.date_of_birth,
                    f.confidence,
                    f.reasons
                );
            }
        }
        tally.queries += 1;
        tally.found += usize::from(!found.is_empty());
        tally.as_match += usize::from(found.iter().any(|f| f.confidence == Confidence::Match));
    }
    tally
}

/// Brothers and sisters: asked about one child of a household (on the register or not), the
/// others must not come back as a match.
fn evaluate_siblings() -> Tally {
    let reg = register();
    let mut homes: HashMap<&str, Vec<&SyntheticChild>> = HashMap::new();
    for c in reg.all.iter().filter(|c| !c.date_of_birth.is_empty()) {
        homes.entry(c.address.as_str()).or_default().push(c);
    }
    let held: HashSet<&str> = reg.projected.iter().map(|c| c.record_id.as_str()).collect();
    let mut tally = Tally::default();
    for family in homes.values().filter(|f| f.len() > 1) {
        for asked in family {
            let found = reg.matcher.find(&base(asked));
            let siblings: Vec<&str> = family
                .iter()
                .filter(|s| s.record_id != asked.record_id && held.contains(s.record_id.as_str()))
                .map(|s| s.record_id.as_str())
                .collect();
            if siblings.is_empty() {
                continue;
            }
            tally.queries += 1;
            tally.found += usize::from(
                found
                    .iter()
                    .any(|f| siblings.contains(&f.child.record_id.as_str())),
            );
            let wrong = found.iter().find(|f| {
                f.confidence == Confidence::Match && siblings.contains(&f.child.record_id.as_str())
            });
            if let Some(wrong) = wrong {
                println!("sibling as match: asked {asked:?}, got {:?}", wrong.child);
            }
            tally.as_match += usize::from(wrong.is_some());
        }
    }
    tally
}

/// A brother or sister who is not on the register (born at least ten months apart, another
/// first name): nobody at that address may come back as a match.
fn evaluate_invented_siblings() -> Tally {
    let reg = register();
    let born: Vec<&SyntheticChild> = reg
        .projected
        .iter()
        .filter(|c| !c.date_of_birth.is_empty() && !c.given_names.is_empty())
        .collect();
    let mut dice = Dice(310);
    let mut tally = Tally::default();
    while tally.queries < 1_000 {
        let child = born[dice.below(born.len())];
        let donor = born[dice.below(born.len())];
        if donor.gender != child.gender || first(&donor.given_names) == first(&child.given_names) {
            continue;
        }
        let Some(older) =
            dob(child).and_then(|d| d.checked_sub_days(Days::new(310 + dice.below(1100) as u64)))
        else {
            continue;
        };
        let query = Query {
            given: first(&donor.given_names).to_owned(),
            surname: child.surname.clone(),
            dob: Some(older),
            postcode: Some(child.postcode.clone()),
            ..Default::default()
        };
        let found = reg.matcher.find(&query);
        let at_home: Vec<_> = found
            .iter()
            .filter(|f| f.child.address == child.address)
            .collect();
        tally.queries += 1;
        tally.found += usize::from(!at_home.is_empty());
        tally.as_match += usize::from(at_home.iter().any(|f| f.confidence == Confidence::Match));
    }
    tally
}

#[test]
fn lookups_find_the_child_asked_about_and_not_a_sibling() {
    let started = std::time::Instant::now();
    let reg = register();
    println!(
        "register: {} children, {} projected (on a plan); matcher built in {:?}",
        reg.all.len(),
        reg.matcher.len(),
        started.elapsed()
    );
    let (rows, total) = evaluate_known();
    let absent = evaluate_absent();
    let siblings = evaluate_siblings();
    let invented = evaluate_invented_siblings();
    println!(
        "{:<38} {:>7} {:>8} {:>8}",
        "variation", "queries", "recall%", "match%"
    );
    let line = |name: &str, t: &Tally| {
        println!(
            "{:<38} {:>7} {:>8.2} {:>8.2}",
            name,
            t.queries,
            Tally::pct(t.found, t.queries),
            Tally::pct(t.as_match, t.queries)
        );
    };
    for (name, tally) in &rows {
        line(name, tally);
    }
    line("ALL KNOWN CHILDREN", &total);
    println!(
        "{:<38} {:>7} {:>8.2} {:>8.2}   (any candidate / any match)",
        "absent children",
        absent.queries,
        Tally::pct(absent.found, absent.queries),
        Tally::pct(absent.as_match, absent.queries)
    );
    println!(
        "{:<38} {:>7} {:>8.2} {:>8.2}   (sibling shown / sibling as match)",
        "siblings at the same address",
        siblings.queries,
        Tally::pct(siblings.found, siblings.queries),
        Tally::pct(siblings.as_match, siblings.queries)
    );
    println!(
        "{:<38} {:>7} {:>8.2} {:>8.2}   (anyone at home shown / as match)",
        "sibling not on the register",
        invented.queries,
        Tally::pct(invented.found, invented.queries),
        Tally::pct(invented.as_match, invented.queries)
    );
    println!("evaluated in {:?}", started.elapsed());

    assert!(
        rows.iter().all(|(_, t)| t.queries > 0),
        "every variation ran"
    );
    assert!(
        Tally::pct(total.found, total.queries) >= 99.5,
        "recall below 99.5 %"
    );
    assert!(
        Tally::pct(absent.found, absent.queries) <= 1.0,
        "absent children brought up candidates"
    );
    assert!(siblings.queries > 100, "enough households with siblings");
    assert_eq!(siblings.as_match, 0, "a sibling was presented as a match");
    assert_eq!(
        invented.as_match, 0,
        "a child at the address of a sibling not on the register was presented as a match"
    );
}
