//! One module per area of the command line.

pub mod audit;
pub mod children;
pub mod demo;
pub mod directory;
pub mod follow_up;
pub mod import;
pub mod lookup;
pub mod pki;
pub mod plans;
pub mod replicas;

use crate::output::CliError;

/// Reads a file named on the command line.
pub(crate) fn read_file(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        what,
        path: path.to_owned(),
        source,
    })
}

/// A category name from the command line as its wire value.
pub(crate) fn category(name: &str) -> Result<i32, CliError> {
    cpreg_primary::record::Category::parse(name)
        .map(cpreg_primary::convert::category_to)
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "unknown category {name:?}: use neglect, physical, sexual or emotional"
            ))
        })
}
