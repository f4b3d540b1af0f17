//! Checks on a page's HTML that a keyboard or screen-reader user depends on: a language, a
//! title and one main heading; a label for every input; buttons that say what they do; no
//! positive tabindex (so focus follows the page's order).

/// One start tag: its name and attributes (names lower-cased, values unescaped enough for ids).
#[derive(Debug)]
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
    /// Where the tag ends in the page, to read what follows it.
    end: usize,
}

impl Tag {
    fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every start tag in `html`, in order (comments and end tags skipped).
fn tags(html: &str) -> Vec<Tag> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(offset) = html[i..].find('<') {
        let start = i + offset + 1;
        i = start;
        if start >= bytes.len() || !bytes[start].is_ascii_alphabetic() {
            continue;
        }
        let mut j = start;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-') {
            j += 1;
        }
        let name = html[start..j].to_ascii_lowercase();
        let mut attributes = Vec::new();
        loop {
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] == b'>' || bytes[j] == b'/' {
                while j < bytes.len() && bytes[j] != b'>' {
                    j += 1;
                }
                break;
            }
            let name_start = j;
            while j < bytes.len() && !b" \t\n=>/".contains(&bytes[j]) {
                j += 1;
            }
            let attribute = html[name_start..j].to_ascii_lowercase();
            let mut value = String::new();
            if j < bytes.len() && bytes[j] == b'=' {
                j += 1;
                if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
                    let quote = bytes[j];
                    let value_start = j + 1;
                    j = value_start;
                    while j < bytes.len() && bytes[j] != quote {
                        j += 1;
                    }
                    value = html[value_start..j.min(bytes.len())].to_owned();
                    j += 1;
                } else {
                    let value_start = j;
                    while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                        j += 1;
                    }
                    value = html[value_start..j].to_owned();
                }
            }
            attributes.push((attribute, value));
        }
        found.push(Tag {
            name,
            attributes,
            end: j,
        });
        i = j;
    }
    found
}

/// The text up to the next `</name>` after a tag, with inner tags removed.
fn inner_text(html: &str, tag: &Tag) -> String {
    let rest = &html[(tag.end + 1).min(html.len())..];
    let close = format!("</{}", tag.name);
    let inner = rest.find(&close).map_or(rest, |at| &rest[..at]);
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_owned()
}

/// What is wrong with `html` for keyboard and screen-reader users; empty when nothing is.
pub fn problems(html: &str) -> Vec<String> {
    let tags = tags(html);
    let mut problems = Vec::new();
    match tags.iter().find(|t| t.name == "html") {
        Some(t) if t.get("lang").is_some_and(|l| !l.is_empty()) => {}
        _ => problems.push("the page does not say its language (<html lang>)".to_owned()),
    }
    match tags.iter().find(|t| t.name == "title") {
        Some(t) if !inner_text(html, t).is_empty() => {}
        _ => problems.push("the page has no title".to_owned()),
    }
    let h1 = tags.iter().filter(|t| t.name == "h1").count();
    if h1 != 1 {
        problems.push(format!("the page has {h1} main headings (h1), not one"));
    }
    let labelled: Vec<&str> = tags
        .iter()
        .filter(|t| t.name == "label")
        .filter_map(|t| t.get("for"))
        .collect();
    for t in &tags {
        let field = match t.name.as_str() {
            "input" => !matches!(
                t.get("type").unwrap_or("text"),
                "hidden" | "submit" | "button" | "reset"
            ),
            "select" | "textarea" => true,
            _ => false,
        };
        if field {
            match t.get("id") {
                Some(id) if labelled.contains(&id) => {}
                Some(id) => problems.push(format!("{} #{id} has no <label for>", t.name)),
                None => problems.push(format!(
                    "{} name={:?} has no id, so no label",
                    t.name,
                    t.get("name")
                )),
            }
        }
        if let Some(index) = t.get("tabindex")
            && index.trim().parse::<i32>().is_ok_and(|n| n > 0)
        {
            problems.push(format!(
                "{} has tabindex={index}: focus would leave the page's order",
                t.name
            ));
        }
        if t.name == "button" && inner_text(html, t).is_empty() {
            problems.push("a button says nothing".to_owned());
        }
        if t.name == "img" && t.get("alt").is_none() {
            problems.push("an image has no alt text".to_owned());
        }
        if t.name == "a" && inner_text(html, t).is_empty() {
            problems.push(format!("a link to {:?} says nothing", t.get("href")));
        }
    }
    problems
}

#[test]
fn the_checker_finds_an_unlabelled_input_and_a_positive_tabindex() {
    let bad = "<html><head><title>x</title></head><body><h1>x</h1>\
               <input type=text id=a name=a><label for=b>B</label><input id=b tabindex=\"2\">\
               <button></button></body></html>";
    let found = problems(bad);
    assert!(found.iter().any(|p| p.contains("language")), "{found:?}");
    assert!(
        found.iter().any(|p| p.contains("#a has no <label")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("tabindex=2")), "{found:?}");
    assert!(
        found.iter().any(|p| p.contains("button says nothing")),
        "{found:?}"
    );
    let good = "<html lang=\"en\"><head><title>x</title></head><body><h1>x</h1>\
                <label for=\"a\">A</label><input type=\"text\" id=\"a\"><input type=\"hidden\" name=\"t\">\
                <button>Go</button><a href=\"/\">Home</a></body></html>";
    assert_eq!(problems(good), Vec::<String>::new());
}
