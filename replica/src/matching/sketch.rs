//! A quick, certain "no" before the full comparison of names: most records gathered for a
//! date of birth belong to other children whose names share nothing with the one asked about,
//! and saying so from counts of letters and variant groups costs a fraction of running the
//! string-similarity measures that [`super::evidence`] uses.
//!
//! Every check here is a necessary condition of a hit in [`super::evidence::Comparer`]: a name
//! the sketch rules out could not have been a hit there, so the candidates are the same with or
//! without it (the test at the foot of this file holds the two together).

use super::evidence::NameParts;
use super::variants::NameVariants;

/// One normalised token (ASCII lower case and digits) in a word: which letters and digits it
/// holds (bits 0 to 35) and its length (bits 56 to 63). Zero is no token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Letters(u64);

impl Letters {
    /// `None` for a token too long to say in a byte: the caller then skips the quick check.
    pub fn of(token: &str) -> Option<Letters> {
        let len = u8::try_from(token.len()).ok()?;
        let mut mask = 0u64;
        for b in token.bytes() {
            match b {
                b'a'..=b'z' => mask |= 1 << (b - b'a'),
                b'0'..=b'9' => mask |= 1 << (26 + b - b'0'),
                _ => {}
            }
        }
        Some(Letters(mask | u64::from(len) << 56))
    }

    fn len(self) -> u32 {
        (self.0 >> 56) as u32
    }

    fn mask(self) -> u64 {
        self.0 & ((1 << 36) - 1)
    }

    fn is_none(self) -> bool {
        self.0 == 0
    }

    /// Whether two spellings could be within two edits of each other, or alike enough by
    /// Jaro-Winkler (0.8 or more) to be a typo or a like sound.
    ///
    /// Letters of one that the other lacks cannot be in common, so at most `m` are. Two edits
    /// leave all but two letters of the longer in common. A Jaro-Winkler of 0.8 needs a Jaro of
    /// 2/3 (the prefix bonus adds at most 0.4 of what is missing), and Jaro is at most
    /// (m/a + m/b + 1) / 3, so m/a + m/b must reach 1.
    pub fn could_be_alike(self, other: Letters) -> bool {
        let (a, b) = (self.len(), other.len());
        let only_a = (self.mask() & !other.mask()).count_ones();
        let only_b = (other.mask() & !self.mask()).count_ones();
        let m = a.saturating_sub(only_a).min(b.saturating_sub(only_b));
        m + 2 >= a.max(b) || m * (a + b) >= a * b
    }
}

/// What the quick check holds of one name, in a few words so that the names of every child born
/// on a day sit together in memory: the letters of its first three tokens and of the name
/// joined, and its variant groups folded into 64 bits. A name it cannot hold (more tokens, a
/// very long token) is `wide` and always goes on to the full comparison.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sketch {
    tokens: [Letters; 3],
    joined: Letters,
    groups: u64,
    wide: bool,
}

impl Sketch {
    pub fn new(parts: &NameParts, variants: &NameVariants) -> Sketch {
        let mut sketch = Sketch {
            wide: parts.tokens.len() > 3,
            ..Sketch::default()
        };
        for (slot, token) in sketch.tokens.iter_mut().zip(&parts.tokens) {
            match Letters::of(token) {
                Some(letters) => *slot = letters,
                None => sketch.wide = true,
            }
        }
        if !parts.joined.is_empty() {
            match Letters::of(&parts.joined) {
                Some(letters) => sketch.joined = letters,
                None => sketch.wide = true,
            }
        }
        for token in parts.tokens.iter().chain(std::iter::once(&parts.joined)) {
            for group in variants.groups(token) {
                sketch.groups |= 1 << (group % 64);
            }
        }
        sketch
    }

    fn tokens(&self) -> impl Iterator<Item = Letters> + '_ {
        self.tokens.iter().copied().take_while(|t| !t.is_none())
    }

    /// Whether any token of one could be any token of the other (the same, or alike), or the
    /// two joined, or they may share a variant group.
    fn could_meet(&self, other: &Sketch) -> bool {
        self.wide
            || other.wide
            || self.groups & other.groups != 0
            || self.joined.could_be_alike(other.joined)
            || self
                .tokens()
                .any(|a| other.tokens().any(|b| a.could_be_alike(b)))
    }
}

/// Whether a name asked about (given names with given names, surname with surname) could be a
/// hit against one held.
pub fn could_agree(asked: &Sketch, held: &Sketch) -> bool {
    !asked.joined.is_none() && !held.joined.is_none() && asked.could_meet(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::evidence::{Comparer, SoundCodes};
    use rphonetic::DoubleMetaphone;

    const GIVEN: &[&str] = &[
        "Oliver",
        "Olivia",
        "Ollie",
        "Alfie",
        "Amelia",
        "Mohammed",
        "Muhammad",
        "Mohamed",
        "William",
        "Bill",
        "Liam",
        "Siobhan",
        "Shivaun",
        "Aleksandra",
        "Sasha",
        "Zoe",
        "Zoë",
        "Jo",
        "Joe",
        "Li",
        "Lu",
        "Mary Anne",
        "Anne Marie",
        "Ana",
        "Hannah",
        "Jayden",
        "Jaden",
        "Kacper",
        "Casper",
        "Nguyen",
        "Ewan",
        "Euan",
        "Eoin",
        "Oluwaseun",
        "Seun",
        "Grace",
        "Christopher",
        "Kristopher",
        "Chris",
        "Abdulrahman",
        "Abdul Rahman",
        "Evie",
        "Eve",
    ];
    const SURNAMES: &[&str] = &[
        "Smith",
        "Smyth",
        "Smiht",
        "Jones",
        "Evans",
        "Evnas",
        "Smith-Jones",
        "Jones Smith",
        "O'Connor",
        "Connor",
        "Kowalski",
        "Kowalsky",
        "Nguyen",
        "Ngyuen",
        "Win",
        "Li",
        "Lee",
        "Ahmed",
        "Ahmad",
        "Achmed",
        "McDonald",
        "MacDonald",
        "Okafor",
        "Okafur",
        "Ho",
        "Hu",
        "Begum",
        "Bibi",
        "Patel",
        "Patil",
        "De La Cruz",
        "Cruz",
        "Abubakar",
        "Abu Bakar",
    ];

    /// The quick check never rules out what the full comparison would have counted.
    #[test]
    fn the_sketch_never_rules_out_a_hit() {
        let variants = NameVariants::builtin();
        let encoder = DoubleMetaphone::default();
        let sounds = |t: &str| -> SoundCodes {
            let r = encoder.double_metaphone(t);
            (r.primary(), r.alternate())
        };
        let comparer = Comparer {
            variants: &variants,
            sounds: &sounds,
        };
        let mut hits = 0;
        for (names, given) in [(GIVEN, true), (SURNAMES, false)] {
            for x in names {
                for y in names {
                    let (a, h) = (NameParts::new(x), NameParts::new(y));
                    let (sa, sh) = (Sketch::new(&a, &variants), Sketch::new(&h, &variants));
                    let (hit, could) = if given {
                        (comparer.given(&a, &h).is_some(), could_agree(&sa, &sh))
                    } else {
                        (comparer.surname(&a, &h).is_some(), could_agree(&sa, &sh))
                    };
                    assert!(could || !hit, "{x} against {y}: a hit the sketch ruled out");
                    hits += usize::from(hit);
                }
            }
        }
        assert!(
            hits > 100,
            "too few hits ({hits}) for the test to mean much"
        );
    }

    #[test]
    fn names_with_nothing_in_common_are_ruled_out() {
        let variants = NameVariants::builtin();
        let sketch = |n: &str| Sketch::new(&NameParts::new(n), &variants);
        assert!(!could_agree(&sketch("Smith"), &sketch("Okafor")));
        assert!(!could_agree(&sketch("Grace"), &sketch("Mohammed")));
        assert!(could_agree(&sketch("Bill"), &sketch("William")));
    }
}
