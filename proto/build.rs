//! Compiles the `.proto` contract with protox, so no system `protoc` is needed. Messages derive
//! `serde::Serialize` so the command line's `--json` output is the wire contract itself, with
//! enum fields written as their lower-case names ("neglect", not 1).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/cpreg/v1/register.proto",
        "proto/cpreg/v1/replication.proto",
        "proto/cpreg/v1/lookup.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    // The same descriptors, encoded, for the servers' gRPC reflection service.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("cpreg_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    let enum_fields = [
        ("cpreg.v1.ChildDetails.gender", "crate::json::gender"),
        ("cpreg.v1.HouseholdChild.gender", "crate::json::gender"),
        ("cpreg.v1.Plan.categories", "crate::json::categories"),
        (
            "cpreg.v1.ChildSummary.categories",
            "crate::json::categories",
        ),
        ("cpreg.v1.PlanEnd.reason", "crate::json::end_reason"),
        (
            "cpreg.v1.Organisation.kind",
            "crate::json::organisation_kind",
        ),
        (
            "cpreg.v1.HistoricRelease.status",
            "crate::json::release_status",
        ),
        ("cpreg.v1.RowAck.outcome", "crate::json::row_outcome"),
        ("cpreg.v1.ProjectedChild.gender", "crate::json::gender"),
        ("cpreg.v1.ChildQuery.gender", "crate::json::gender"),
        ("cpreg.v1.Candidate.categories", "crate::json::categories"),
        ("cpreg.v1.Candidate.confidence", "crate::json::confidence"),
        (
            "cpreg.v1.LookupAnswer.outcome",
            "crate::json::lookup_outcome",
        ),
        (
            "cpreg.v1.RecordCallbackRequest.outcome",
            "crate::json::callback_outcome",
        ),
        (
            "cpreg.v1.ProjectedChild.categories",
            "crate::json::categories",
        ),
        (
            "cpreg.v1.ProjectedChild.end_reason",
            "crate::json::end_reason",
        ),
        ("cpreg.v1.Manifest.kind", "crate::json::manifest_kind"),
    ];
    let mut config =
        tonic_prost_build::configure().type_attribute(".cpreg.v1", "#[derive(serde::Serialize)]");
    for (field, with) in enum_fields {
        config = config.field_attribute(field, format!("#[serde(serialize_with = \"{with}\")]"));
    }
    config
        .field_attribute(".cpreg.v1.AuditEntry.bytes", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.AuditCheckpoint.bytes", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.AuditCheckpoint.signature", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.AddPlanDocumentRequest.content", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.ImportChunk.data", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.SnapshotFrame.frame", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.SignedManifest.manifest", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.SignedManifest.signature", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.KeyRotation.statement", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.KeyRotation.signature", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.Change.value", "#[serde(skip)]")
        .field_attribute(".cpreg.v1.EnquiryReport.record", "#[serde(skip)]")
        .field_attribute(
            ".cpreg.v1.SubscribeRequest.have_state_root",
            "#[serde(skip)]",
        )
        .field_attribute(
            ".cpreg.v1.Manifest.payload_digest",
            "#[serde(serialize_with = \"crate::json::hex_bytes\")]",
        )
        .field_attribute(
            ".cpreg.v1.Manifest.state_root",
            "#[serde(serialize_with = \"crate::json::hex_bytes\")]",
        )
        .field_attribute(
            ".cpreg.v1.RotationStatement.new_public_key",
            "#[serde(serialize_with = \"crate::json::hex_bytes\")]",
        )
        .field_attribute(
            ".cpreg.v1.AuthorityReply.public_key",
            "#[serde(serialize_with = \"crate::json::hex_bytes\")]",
        )
        .compile_fds(fds)?;
    Ok(())
}
