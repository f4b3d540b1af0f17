//! The console's one stylesheet, embedded (the site may be cut off: no CDN, no web fonts), built
//! from a small palette whose text/background pairs are checked against WCAG 2.2 AA contrast.

use std::sync::LazyLock;

/// Body text.
const INK: &str = "#1b1b1b";
/// Page background.
const PAPER: &str = "#ffffff";
/// Secondary text (hints, labels of facts).
const MUTED: &str = "#4b5458";
/// Links, and the "no record" band.
const LINK: &str = "#1d4f91";
/// Buttons.
const ACTION: &str = "#00623a";
/// The "plan found" band, the stale warning and error borders.
const ALARM: &str = "#a0180e";
/// The "possible match" band and the keyboard focus highlight.
const AMBER: &str = "#ffdd00";
/// Tinted panels: the fresh banner, refusals, candidates.
const CALM: &str = "#e8f1ec";
const PINK: &str = "#fbe9e7";
const MIST: &str = "#f3f2f1";
/// Borders (non-text).
const RULE: &str = "#6f777b";

/// Every (where, foreground, background) the stylesheet puts text in.
pub const TEXT_PAIRS: [(&str, &str, &str); 13] = [
    ("body text", INK, PAPER),
    ("hints and fact labels", MUTED, PAPER),
    ("links", LINK, PAPER),
    ("buttons", PAPER, ACTION),
    ("plan found band", PAPER, ALARM),
    ("stale warning banner", PAPER, ALARM),
    ("possible match band", INK, AMBER),
    ("no record band", PAPER, LINK),
    ("fresh banner", INK, CALM),
    ("refusal panel", INK, PINK),
    ("candidate panel", INK, MIST),
    ("candidate links", LINK, MIST),
    ("focused link", INK, AMBER),
];

/// Colours that carry no text (borders, outlines): 3:1 against the page (WCAG 1.4.11).
pub const NON_TEXT: [(&str, &str, &str); 3] = [
    ("input borders", RULE, PAPER),
    ("error borders", ALARM, PAPER),
    ("focus outline", INK, PAPER),
];

/// The stylesheet served at `/console.css`.
pub static CSS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"*{{box-sizing:border-box}}
html{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:112.5%;line-height:1.45;color:{INK};background:{PAPER}}}
body{{margin:0}}
.skip{{position:absolute;left:-999px}}
.skip:focus{{left:.5rem;top:.5rem}}
header{{padding:.6rem 1rem;border-bottom:4px solid {LINK}}}
.brand{{margin:0;font-weight:700}}
nav ul{{list-style:none;margin:.3rem 0 0;padding:0;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;align-items:center}}
a{{color:{LINK}}}
a:focus,button:focus,input:focus,select:focus,textarea:focus{{outline:3px solid {INK};outline-offset:0;box-shadow:0 0 0 6px {AMBER}}}
a:focus{{background:{AMBER};color:{INK}}}
main{{max-width:46rem;padding:1rem}}
h1{{font-size:1.6rem;margin:.4rem 0 1rem}}
h2{{font-size:1.25rem;margin:1.2rem 0 .5rem}}
.banner{{padding:.6rem 1rem;margin:0}}
.fresh{{background:{CALM};color:{INK}}}
.stale{{background:{ALARM};color:{PAPER};font-weight:700}}
.problem{{background:{PINK};color:{INK};border-left:6px solid {ALARM};padding:.6rem 1rem;margin:0 0 1rem}}
.problem h2{{margin-top:0}}
label,legend{{display:block;font-weight:700;margin:.8rem 0 .2rem}}
.hint{{color:{MUTED};font-weight:400;display:block}}
input[type=text],input[type=password],select,textarea{{font:inherit;width:100%;max-width:30rem;padding:.4rem;border:2px solid {RULE};background:{PAPER};color:{INK}}}
textarea{{min-height:4.5rem}}
.narrow{{max-width:12rem}}
fieldset{{border:0;padding:0;margin:1rem 0 0}}
.choice{{margin:.4rem 0}}
.choice label{{display:inline;font-weight:400;margin:0 0 0 .4rem}}
button{{font:inherit;font-weight:700;background:{ACTION};color:{PAPER};border:0;padding:.55rem 1.1rem;margin:1rem 0;cursor:pointer}}
.link-button{{background:none;color:{LINK};text-decoration:underline;padding:0;margin:0;font-weight:400}}
.inline{{display:inline;margin:0}}
.band{{padding:.8rem 1rem;font-size:1.3rem;font-weight:700;margin:0 0 1rem}}
.band-match{{background:{ALARM};color:{PAPER}}}
.band-possible{{background:{AMBER};color:{INK}}}
.band-none{{background:{LINK};color:{PAPER}}}
.ring{{font-size:1.3rem;font-weight:700}}
.candidate{{background:{MIST};color:{INK};padding:.4rem 1rem .8rem;margin:1rem 0}}
dl{{display:grid;grid-template-columns:minmax(8rem,auto) 1fr;gap:.2rem 1rem;margin:0}}
dt{{color:{MUTED}}}
.candidate dt{{color:{INK}}}
dd{{margin:0}}
table{{border-collapse:collapse;width:100%}}
th,td{{text-align:left;padding:.3rem .5rem;border-bottom:1px solid {RULE}}}
@media (max-width:30rem){{dl{{grid-template-columns:1fr}}html{{font-size:100%}}}}
"#
    )
});

/// The relative luminance of a `#rrggbb` colour (WCAG 2.2).
pub fn luminance(hex: &str) -> Option<f64> {
    let hex = hex.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

/// The contrast ratio of two `#rrggbb` colours, from 1 to 21.
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(a)?, luminance(b)?);
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contrast_formula_gives_the_known_ratios() {
        let ratio = contrast("#000000", "#ffffff").expect("colours");
        assert!((ratio - 21.0).abs() < 1e-9, "{ratio}");
        let ratio = contrast("#767676", "#ffffff").expect("colours");
        assert!((ratio - 4.54).abs() < 0.01, "{ratio}");
        assert_eq!(contrast("#fff", "#000"), None);
    }

    #[test]
    fn every_text_colour_meets_wcag_aa_on_its_background() {
        for (used, fg, bg) in TEXT_PAIRS {
            let ratio = contrast(fg, bg).expect("colours");
            assert!(ratio >= 4.5, "{used}: {fg} on {bg} is only {ratio:.2}:1");
        }
        for (used, fg, bg) in NON_TEXT {
            let ratio = contrast(fg, bg).expect("colours");
            assert!(ratio >= 3.0, "{used}: {fg} on {bg} is only {ratio:.2}:1");
        }
    }

    #[test]
    fn the_stylesheet_uses_no_colour_outside_the_checked_palette() {
        let checked: Vec<&str> = TEXT_PAIRS
            .iter()
            .flat_map(|(_, fg, bg)| [*fg, *bg])
            .chain(NON_TEXT.iter().flat_map(|(_, fg, bg)| [*fg, *bg]))
            .collect();
        let css = CSS.as_str();
        let mut rest = css;
        while let Some(at) = rest.find('#') {
            let colour = rest.get(at..at + 7).unwrap_or_default();
            assert!(
                checked.contains(&colour),
                "{colour} is in the stylesheet but in no checked pair"
            );
            rest = &rest[at + 1..];
        }
        for word in ["rgb(", "hsl(", "url(", "@import", "@font-face"] {
            assert!(!css.contains(word), "the stylesheet uses {word}");
        }
    }
}
