//! Escaping for the console's server-rendered pages: every value from outside (a name typed, a
//! record, a message) goes through [`escape`] before it is placed in HTML.

/// The text made safe to place in HTML content or in a quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A `tel:` link target: digits and a leading `+` only, so nothing else reaches the attribute.
pub fn tel(number: &str) -> String {
    number
        .chars()
        .enumerate()
        .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_value_is_shown_as_text() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn a_phone_link_keeps_digits_only() {
        assert_eq!(tel("+44 1632 960 100\"><b>"), "+441632960100");
        assert_eq!(tel("01632 960 100"), "01632960100");
    }
}
