//! The tables of names that stand for one another: short forms (Bill for William) and other
//! spellings (Muhammad for Mohammed), kept as data files beside the crate so they can be read and
//! extended without touching code.

use std::collections::HashMap;

use cpreg_proto::names;

/// Short forms and nicknames, one group a line, the full name first.
const SHORT_FORMS: &str = include_str!("../../data/short_forms.txt");
/// Other spellings and transliterations, one group a line.
const SPELLINGS: &str = include_str!("../../data/spellings.txt");

/// How two different names are related.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// One is a short form or nickname of the other (or both of one full name).
    ShortForm,
    /// Two spellings or transliterations of one name.
    Spelling,
}

/// Which groups each normalised, joined name belongs to.
#[derive(Debug, Default)]
pub struct NameVariants {
    /// Joined normalised name → (group number, relation of the group).
    groups: HashMap<String, Vec<(u32, Relation)>>,
}

impl NameVariants {
    /// The tables shipped with the replica.
    pub fn builtin() -> NameVariants {
        let mut variants = NameVariants::default();
        variants.add_table(SHORT_FORMS, Relation::ShortForm);
        variants.add_table(SPELLINGS, Relation::Spelling);
        variants
    }

    /// Adds one table: a group of comma-separated names per line, `#` starts a comment.
    pub fn add_table(&mut self, table: &str, relation: Relation) {
        let mut next = self.groups.values().flatten().map(|g| g.0 + 1).max();
        for line in table.lines() {
            let line = line.split('#').next().unwrap_or("");
            let members: Vec<String> = line
                .split(',')
                .map(names::joined)
                .filter(|n| !n.is_empty())
                .collect();
            if members.len() < 2 {
                continue;
            }
            let group = next.unwrap_or(0);
            next = Some(group + 1);
            for member in members {
                let entry = self.groups.entry(member).or_default();
                if !entry.iter().any(|(g, _)| *g == group) {
                    entry.push((group, relation));
                }
            }
        }
    }

    /// The group keys a name belongs to, for an index ("g17").
    pub fn group_keys(&self, joined: &str) -> impl Iterator<Item = String> + '_ {
        self.groups
            .get(joined)
            .into_iter()
            .flatten()
            .map(|(g, _)| format!("g{g}"))
    }

    /// The numbers of the groups a name belongs to.
    pub fn groups(&self, joined: &str) -> impl Iterator<Item = u32> + '_ {
        self.groups
            .get(joined)
            .into_iter()
            .flatten()
            .map(|(g, _)| *g)
    }

    /// How two joined normalised names are related, if they differ and share a group; a short
    /// form wins over a spelling when both hold.
    pub fn relation(&self, a: &str, b: &str) -> Option<Relation> {
        if a == b {
            return None;
        }
        let (ga, gb) = (self.groups.get(a)?, self.groups.get(b)?);
        let mut found = None;
        for (g, relation) in ga {
            if gb.iter().any(|(h, _)| h == g) {
                if *relation == Relation::ShortForm {
                    return Some(Relation::ShortForm);
                }
                found = Some(*relation);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_the_common_groups() {
        let v = NameVariants::builtin();
        assert_eq!(v.relation("bill", "william"), Some(Relation::ShortForm));
        assert_eq!(v.relation("liz", "beth"), Some(Relation::ShortForm));
        assert_eq!(v.relation("sasha", "alexandra"), Some(Relation::ShortForm));
        assert_eq!(v.relation("muhammad", "mohamed"), Some(Relation::Spelling));
        assert_eq!(v.relation("siobhan", "shivaun"), Some(Relation::Spelling));
        assert_eq!(v.relation("alhassan", "alhassan"), None);
        assert_eq!(v.relation("william", "robert"), None);
        assert!(v.groups.values().flatten().map(|g| g.0).max() > Some(200));
    }
}
