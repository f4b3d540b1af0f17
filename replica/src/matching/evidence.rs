//! Comparing one name or date given in a query with one held on a record, and saying in plain
//! words what agrees.

use chrono::{Datelike, NaiveDate};
use strsim::{damerau_levenshtein, jaro_winkler};

use super::variants::{NameVariants, Relation};

/// A name as the matcher holds it: normalised tokens, joined, and their sound codes.
#[derive(Debug, Clone, Default)]
pub struct NameParts {
    pub tokens: Vec<String>,
    pub joined: String,
}

impl NameParts {
    pub fn new(name: &str) -> NameParts {
        let tokens = cpreg_proto::names::tokens(name);
        let joined = tokens.concat();
        NameParts { tokens, joined }
    }

    pub fn is_empty(&self) -> bool {
        self.joined.is_empty()
    }
}

/// What agrees between two names, how much it counts and how to say it.
#[derive(Debug, Clone)]
pub struct NameHit {
    pub score: u32,
    /// Strong evidence (same name, a part of it, a known variant) as against a near spelling or
    /// a like sound, which on its own is not enough for a match.
    pub strong: bool,
    pub reason: String,
}

impl NameHit {
    fn strong(score: u32, reason: String) -> Option<NameHit> {
        Some(NameHit {
            score,
            strong: true,
            reason,
        })
    }

    fn weak(score: u32, reason: String) -> Option<NameHit> {
        Some(NameHit {
            score,
            strong: false,
            reason,
        })
    }
}

/// The sound codes of a token: Double Metaphone primary and alternate.
pub type SoundCodes = (String, String);

/// Tools the comparisons share.
pub struct Comparer<'a> {
    pub variants: &'a NameVariants,
    /// Sound codes of a token; computed on demand for query tokens.
    pub sounds: &'a dyn Fn(&str) -> SoundCodes,
}

/// "Mohammed" from "mohammed", for reasons read by people.
pub fn display(token: &str) -> String {
    let mut chars = token.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The Damerau-Levenshtein distance, as `strsim::damerau_levenshtein` counts it (an adjacent
/// transposition is one edit), over the ASCII the matcher's names are normalised to, with a table
/// per byte where strsim keeps a hash map of characters: it runs for every name compared.
fn edit_distance(a: &str, b: &str) -> usize {
    if !a.is_ascii() || !b.is_ascii() {
        return damerau_levenshtein(a, b);
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return n.max(m);
    }
    // d(i, j) for i in -1..=n and j in -1..=m, kept at (i + 1) * width + (j + 1): on the stack
    // for names up to 30 letters, as nearly all are.
    let width = m + 2;
    let at = |i: usize, j: usize| i * width + j;
    let most = n + m;
    const ON_STACK: usize = 32 * 32;
    let mut stack = [0usize; ON_STACK];
    let mut heap = Vec::new();
    let d: &mut [usize] = if (n + 2) * width <= ON_STACK {
        &mut stack[..(n + 2) * width]
    } else {
        heap.resize((n + 2) * width, 0);
        &mut heap
    };
    d[at(0, 0)] = most;
    for i in 0..=n {
        d[at(i + 1, 0)] = most;
        d[at(i + 1, 1)] = i;
    }
    for j in 0..=m {
        d[at(0, j + 1)] = most;
        d[at(1, j + 1)] = j;
    }
    // The last row where each byte was seen in `a`.
    let mut row_of = [0usize; 128];
    for i in 1..=n {
        let mut column = 0;
        for j in 1..=m {
            let (k, l) = (row_of[usize::from(b[j - 1])], column);
            let cost = if a[i - 1] == b[j - 1] {
                column = j;
                0
            } else {
                1
            };
            d[at(i + 1, j + 1)] = (d[at(i, j)] + cost)
                .min(d[at(i + 1, j)] + 1)
                .min(d[at(i, j + 1)] + 1)
                .min(d[at(k, l)] + (i - k - 1) + 1 + (j - l - 1));
        }
        row_of[usize::from(a[i - 1])] = i;
    }
    d[at(n + 1, m + 1)]
}

/// A slip of the keyboard: one edit (two in a long name), or very close by Jaro-Winkler.
fn is_typo(a: &str, b: &str) -> bool {
    if a == b || a.is_empty() || b.is_empty() {
        return false;
    }
    let longest = a.len().max(b.len());
    if longest - a.len().min(b.len()) > 2 && longest < 6 {
        return false;
    }
    let edits = edit_distance(a, b);
    edits <= 1 || (longest >= 8 && edits <= 2) || (longest >= 6 && jaro_winkler(a, b) >= 0.93)
}

impl Comparer<'_> {
    fn sounds_alike(&self, a: &str, b: &str) -> bool {
        // Four-letter codes are coarse (Alfie and Olivia share one): the spelling must be near too.
        if a.len() < 2 || b.len() < 2 || jaro_winkler(a, b) < 0.8 {
            return false;
        }
        let (pa, aa) = (self.sounds)(a);
        let (pb, ab) = (self.sounds)(b);
        !pa.is_empty() && (pa == pb || pa == ab || aa == pb || (!aa.is_empty() && aa == ab))
    }

    fn relation_words(&self, asked: &str, held: &str, what: &str) -> Option<String> {
        let relation = self.variants.relation(asked, held)?;
        let (a, h) = (display(asked), display(held));
        match relation {
            Relation::ShortForm => Some(format!("{a} is a short form of {what}{h}")),
            Relation::Spelling => Some(format!("{a} is another spelling of {what}{h}")),
        }
    }

    /// The surname asked about against one held.
    pub fn surname(&self, asked: &NameParts, held: &NameParts) -> Option<NameHit> {
        if asked.is_empty() || held.is_empty() {
            return None;
        }
        if asked.joined == held.joined {
            return NameHit::strong(30, "surname exact".into());
        }
        let within = |small: &NameParts, big: &NameParts| {
            small.tokens.len() < big.tokens.len()
                && small.tokens.iter().all(|t| big.tokens.contains(t))
        };
        if within(asked, held) || within(held, asked) {
            return NameHit::strong(
                26,
                "surname is one part of a double-barrelled surname".into(),
            );
        }
        let pairs = || {
            std::iter::once((&asked.joined, &held.joined)).chain(
                asked
                    .tokens
                    .iter()
                    .flat_map(|a| held.tokens.iter().map(move |h| (a, h))),
            )
        };
        if let Some(words) = pairs().find_map(|(a, h)| self.relation_words(a, h, "")) {
            return NameHit::strong(25, words.replace(" of ", " of the surname "));
        }
        if is_typo(&asked.joined, &held.joined)
            || (asked.tokens.len() + held.tokens.len() > 2
                && pairs().any(|(a, h)| a.len() >= 5 && is_typo(a, h)))
        {
            return NameHit::weak(18, "surname spelt nearly the same".into());
        }
        if pairs().any(|(a, h)| self.sounds_alike(a, h)) {
            return NameHit::weak(15, "surname sounds alike".into());
        }
        None
    }

    /// The given names asked about against those held (first name first, then middle names).
    pub fn given(&self, asked: &NameParts, held: &NameParts) -> Option<NameHit> {
        let (Some(first), Some(held_first)) = (asked.tokens.first(), held.tokens.first()) else {
            return None;
        };
        if asked.joined == held.joined {
            return NameHit::strong(32, "given names exact".into());
        }
        if first == held_first {
            return NameHit::strong(30, "first name exact".into());
        }
        if held.tokens[1..].contains(first) {
            return NameHit::strong(25, format!("{} is the child's middle name", display(first)));
        }
        if asked.tokens[1..].contains(held_first) {
            return NameHit::strong(25, "given names in another order".into());
        }
        if let Some(words) = self.relation_words(first, held_first, "") {
            return NameHit::strong(25, words);
        }
        if let Some(words) = self.relation_words(&asked.joined, &held.joined, "") {
            return NameHit::strong(25, words);
        }
        if let Some(words) = held.tokens[1..]
            .iter()
            .find_map(|h| self.relation_words(first, h, "the middle name "))
        {
            return NameHit::strong(22, words);
        }
        if is_typo(first, held_first) || is_typo(&asked.joined, &held.joined) {
            return NameHit::weak(18, "given name spelt nearly the same".into());
        }
        if self.sounds_alike(first, held_first) {
            return NameHit::weak(15, "given name sounds alike".into());
        }
        None
    }
}

/// How a date of birth asked about stands to the one held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateEvidence {
    Exact,
    /// Day and month the other way round (04/03 for 03/04).
    Swapped,
    /// Within a few days.
    Near(i64),
    /// Same day and month, a year out.
    YearOff,
    Differs,
    /// Not asked, or not held.
    Unknown,
}

/// Days either side that still count as a near date.
pub const NEAR_DAYS: i64 = 3;

impl DateEvidence {
    pub fn compare(asked: Option<NaiveDate>, held: Option<NaiveDate>) -> DateEvidence {
        let (Some(asked), Some(held)) = (asked, held) else {
            return DateEvidence::Unknown;
        };
        if asked == held {
            return DateEvidence::Exact;
        }
        if swapped(asked) == Some(held) {
            return DateEvidence::Swapped;
        }
        let days = (asked - held).num_days();
        if days.abs() <= NEAR_DAYS {
            return DateEvidence::Near(days);
        }
        if asked.month() == held.month()
            && asked.day() == held.day()
            && (asked.year() - held.year()).abs() == 1
        {
            return DateEvidence::YearOff;
        }
        DateEvidence::Differs
    }

    pub fn score(self) -> u32 {
        match self {
            DateEvidence::Exact => 40,
            DateEvidence::Swapped => 28,
            DateEvidence::Near(_) | DateEvidence::YearOff => 24,
            DateEvidence::Differs | DateEvidence::Unknown => 0,
        }
    }

    pub fn reason(self) -> Option<String> {
        match self {
            DateEvidence::Exact => Some("date of birth exact".into()),
            DateEvidence::Swapped => Some("date of birth with day and month swapped".into()),
            DateEvidence::Near(d) => Some(format!(
                "date of birth {} day{} out",
                d.abs(),
                if d.abs() == 1 { "" } else { "s" }
            )),
            DateEvidence::YearOff => Some("date of birth a year out".into()),
            DateEvidence::Differs | DateEvidence::Unknown => None,
        }
    }

    /// Whether the date is close enough for the record to be the child asked about.
    pub fn close(self) -> bool {
        !matches!(self, DateEvidence::Differs | DateEvidence::Unknown)
    }
}

/// The date with day and month swapped, where that is a date and differs.
pub fn swapped(date: NaiveDate) -> Option<NaiveDate> {
    if date.day() == date.month() || date.day() > 12 {
        return None;
    }
    NaiveDate::from_ymd_opt(date.year(), date.day(), date.month())
}

/// Every date a record may be held under for a date asked about: the date, swapped, near, a
/// year out.
pub fn dates_to_search(asked: NaiveDate) -> Vec<NaiveDate> {
    let mut out: Vec<NaiveDate> = (-NEAR_DAYS..=NEAR_DAYS)
        .filter_map(|d| asked.checked_add_signed(chrono::Duration::days(d)))
        .collect();
    out.extend(swapped(asked));
    out.extend(asked.with_year(asked.year() - 1));
    out.extend(asked.with_year(asked.year() + 1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_edit_distance_counts_as_strsim_does() {
        for (a, b, edits) in [
            ("evans", "evnas", 1),
            ("ca", "abc", 2),
            ("", "amelia", 6),
            ("kowalska", "kowalski", 1),
            ("muhammad", "mohammed", 2),
        ] {
            assert_eq!(edit_distance(a, b), edits, "{a} / {b}");
        }
        // Many short words over a few letters, where transpositions and repeats abound.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut word = || {
                let len = (next() % 9) as usize;
                (0..len)
                    .map(|_| char::from(b"abcde"[(next() % 5) as usize]))
                    .collect::<String>()
            };
            let (a, b) = (word(), word());
            assert_eq!(
                edit_distance(&a, &b),
                damerau_levenshtein(&a, &b),
                "{a} / {b}"
            );
        }
        assert_eq!(
            edit_distance("zoë", "zoe"),
            damerau_levenshtein("zoë", "zoe")
        );
        // Past the table kept on the stack.
        let (long, longer) = ("abcde".repeat(8), "abcde".repeat(8) + "ba");
        assert_eq!(edit_distance(&long, &longer), 2);
    }

    #[test]
    fn dates_compare_as_a_person_would_mistake_them() {
        let held = Some(date("2015-03-04"));
        let cmp = |s: &str| DateEvidence::compare(Some(date(s)), held);
        assert_eq!(cmp("2015-03-04"), DateEvidence::Exact);
        assert_eq!(cmp("2015-04-03"), DateEvidence::Swapped);
        assert_eq!(cmp("2015-03-06"), DateEvidence::Near(2));
        assert_eq!(cmp("2016-03-04"), DateEvidence::YearOff);
        assert_eq!(cmp("2016-03-09"), DateEvidence::Differs);
        assert_eq!(swapped(date("2015-03-03")), None);
        assert_eq!(swapped(date("2015-03-13")), None);
    }

    #[test]
    fn typos_are_one_slip() {
        assert!(is_typo("smith", "smiht"));
        assert!(is_typo("li", "lu"));
        assert!(!is_typo("smith", "jones"));
        assert!(is_typo("abdulrahman", "abdulrahmna"));
    }
}
