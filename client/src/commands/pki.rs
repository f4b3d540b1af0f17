//! `cpreg pki ...`: a development CA and role certificates written as profile folders.

use std::path::Path;

use cpreg_proto::role::Role;

use crate::cli::PkiCommand;
use crate::output::{CliError, Output};
use crate::pki::{DevCa, write_issued};
use crate::profile::{Profile, ProfileFile};

/// Issues a certificate for `role` and writes a complete profile folder.
/// Where a profile's holder sits and what it dials.
#[derive(Debug, Clone, Copy)]
pub struct ProfileTarget<'a> {
    pub primary: &'a str,
    pub replica: Option<&'a str>,
    pub site: Option<&'a str>,
    pub days: u32,
}

pub fn issue_profile(
    ca: &DevCa,
    role: Role,
    name: &str,
    target: ProfileTarget<'_>,
    out: &Path,
) -> Result<ProfileFile, CliError> {
    std::fs::create_dir_all(out).map_err(|source| CliError::Io {
        what: "profile folder",
        path: out.to_owned(),
        source,
    })?;
    let issued = ca.issue_client(role, name, target.site, target.days)?;
    write_issued(&issued, &out.join("cert.pem"), &out.join("key.pem"))?;
    std::fs::write(out.join("ca.pem"), ca.ca_pem()).map_err(|source| CliError::Io {
        what: "CA file",
        path: out.join("ca.pem"),
        source,
    })?;
    let file = ProfileFile {
        role,
        name: name.to_owned(),
        authority: ca.authority().to_owned(),
        primary: target.primary.to_owned(),
        server_name: "localhost".into(),
        replica: target.replica.map(str::to_owned),
        site: target.site.map(str::to_owned),
    };
    Profile::write(out, &file)?;
    Ok(file)
}

pub fn run(command: PkiCommand, out: Output) -> Result<(), CliError> {
    match command {
        PkiCommand::Init { dir, authority } => {
            if dir.join("ca.pem").exists() {
                return Err(CliError::Invalid(format!(
                    "{} already holds a CA; certificates issued from it would stop working: choose another --dir",
                    dir.display()
                )));
            }
            let ca = DevCa::create(&authority)?;
            ca.save(&dir)?;
            out.emit(
                &serde_json::json!({ "dir": dir, "authority": authority }),
                || format!("development CA for {authority} in {}", dir.display()),
            )
        }
        PkiCommand::Issue {
            dir,
            role,
            name,
            site,
            out: target,
            primary,
            server_names,
            days,
        } => {
            let ca = DevCa::load(&dir)?;
            let role: Role = role
                .parse()
                .map_err(|e: cpreg_proto::role::UnknownRole| CliError::Invalid(e.to_string()))?;
            if role == Role::Server {
                let names = if server_names.is_empty() {
                    vec!["localhost".into(), "127.0.0.1".into()]
                } else {
                    server_names
                };
                let issued = ca.issue_server(&name, &names)?;
                std::fs::create_dir_all(&target).map_err(|source| CliError::Io {
                    what: "folder",
                    path: target.clone(),
                    source,
                })?;
                write_issued(&issued, &target.join("cert.pem"), &target.join("key.pem"))?;
                std::fs::write(target.join("ca.pem"), ca.ca_pem()).map_err(|source| {
                    CliError::Io {
                        what: "CA file",
                        path: target.join("ca.pem"),
                        source,
                    }
                })?;
                return out.emit(
                    &serde_json::json!({ "out": target, "role": "server", "names": names }),
                    || {
                        format!(
                            "server certificate for {} in {}",
                            names.join(", "),
                            target.display()
                        )
                    },
                );
            }
            let to = ProfileTarget {
                primary: &primary,
                replica: None,
                site: site.as_deref(),
                days,
            };
            let file = issue_profile(&ca, role, &name, to, &target)?;
            out.emit(&file, || {
                format!("{role} profile for {name} in {}", target.display())
            })
        }
    }
}
