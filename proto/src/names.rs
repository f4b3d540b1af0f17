//! How names are normalised before they are compared, so a terminal, the call-back desk and the
//! replica's indexes all see "Zoë O'Connor-Smith" as the same tokens.
//!
//! Accents are stripped (Zoë → zoe, Łukasz → lukasz), case is folded, apostrophes join
//! (O'Connor → oconnor), and hyphens and every other mark separate ("Smith-Jones" → smith, jones).

/// The normalised name: lower-case ASCII tokens separated by single spaces.
///
/// ```
/// use cpreg_proto::names::normalise;
/// assert_eq!(normalise("  Zoë  O'Connor "), "zoe oconnor");
/// assert_eq!(normalise("SMITH-JONES"), "smith jones");
/// ```
pub fn normalise(name: &str) -> String {
    tokens(name).join(" ")
}

/// The normalised name's tokens, in order.
pub fn tokens(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in name.chars() {
        // Apostrophes join before transliteration: deunicode turns some into quotes.
        if matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ' | '´') {
            continue;
        }
        let ascii = if c.is_ascii() {
            c.to_string()
        } else {
            deunicode::deunicode_char(c).unwrap_or(" ").to_owned()
        };
        for a in ascii.chars() {
            if a.is_ascii_alphanumeric() {
                current.push(a.to_ascii_lowercase());
            } else if a == '\'' {
                // A transliterated mark that reads as an apostrophe still joins.
            } else if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The tokens written as one word ("Smith-Jones" → "smithjones", "Ka Yan" → "kayan"), for
/// names that are spelt sometimes with a space or hyphen and sometimes without.
pub fn joined(name: &str) -> String {
    tokens(name).concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apostrophes_join_and_hyphens_split() {
        assert_eq!(normalise("O'Connor"), "oconnor");
        assert_eq!(normalise("D’Souza"), "dsouza");
        assert_eq!(tokens("Smith-Jones"), ["smith", "jones"]);
        assert_eq!(joined("Smith-Jones"), "smithjones");
    }

    #[test]
    fn case_spaces_and_punctuation_do_not_count() {
        assert_eq!(normalise("  mary   ANNE. "), "mary anne");
        assert_eq!(normalise("St. John"), "st john");
        assert_eq!(normalise(""), "");
    }

    #[test]
    fn diacritics_are_stripped() {
        assert_eq!(normalise("Zoë"), "zoe");
        assert_eq!(normalise("Łukasz Wójcik"), "lukasz wojcik");
        assert_eq!(normalise("Siobhán Ó Briain"), "siobhan o briain");
        assert_eq!(normalise("Nguyễn"), "nguyen");
        assert_eq!(normalise("Yılmaz"), "yilmaz");
        assert_eq!(normalise("Ștefan"), "stefan");
    }
}
