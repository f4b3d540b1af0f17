//! The `cpreg.v1.Register` gRPC service: checks the caller's role, converts the request at the
//! edge, runs the store's blocking work off the async runtime and converts the answer back.

mod import;

use std::pin::Pin;
use std::sync::Arc;

use cpreg_proto::pb::{self, register_server::Register};
use cpreg_proto::role::Role;
use futures::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Caller, require};
use crate::convert;
use crate::store::{ChildFilter, Store, StoreError};

const KEEPERS: &[Role] = &[Role::Custodian];
const READERS: &[Role] = &[Role::Custodian, Role::Auditor];

/// The register service over one store.
#[derive(Debug, Clone)]
pub struct RegisterService {
    store: Arc<Store>,
}

impl RegisterService {
    pub fn new(store: Arc<Store>) -> Self {
        RegisterService { store }
    }

    fn caller<T>(
        &self,
        request: &Request<T>,
        allowed: &[Role],
        rpc: &str,
    ) -> Result<Caller, Status> {
        require(request, self.store.authority(), allowed, rpc)
    }

    /// Runs blocking store work on the blocking pool.
    async fn blocking<T, F>(&self, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| Status::internal(format!("register task failed: {e}")))?
            .map_err(Status::from)
    }

    fn today(&self) -> chrono::NaiveDate {
        self.store.clock().today()
    }
}

fn child_reply(record: &crate::record::ChildRecord, changed: bool) -> Response<pb::ChildReply> {
    Response::new(pb::ChildReply {
        child: Some(convert::child_to(record)),
        changed,
    })
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ImportEvent, Status>> + Send>>;
type AuditStream = Pin<Box<dyn Stream<Item = Result<pb::AuditItem, Status>> + Send>>;

#[tonic::async_trait]
impl Register for RegisterService {
    async fn create_child(
        &self,
        request: Request<pb::CreateChildRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "CreateChild")?.label();
        let req = request.into_inner();
        let id = convert::record_id(&req.record_id)?;
        let details = convert::details_from(
            req.details.as_ref(),
            self.today(),
            convert::DetailsFor::NewChild,
        )?;
        let record = self
            .blocking(move |s| s.create_child(&actor, &id, details))
            .await?;
        Ok(child_reply(&record, true))
    }

    async fn update_child(
        &self,
        request: Request<pb::UpdateChildRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "UpdateChild")?.label();
        let req = request.into_inner();
        let id = convert::record_id(&req.record_id)?;
        let details = convert::details_from(
            req.details.as_ref(),
            self.today(),
            convert::DetailsFor::Change,
        )?;
        let expected = (req.expected_revision > 0).then_some(req.expected_revision);
        let (record, changed) = self
            .blocking(move |s| s.update_child(&actor, &id, details, expected))
            .await?;
        Ok(child_reply(&record, changed))
    }

    async fn get_child(
        &self,
        request: Request<pb::GetChildRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        self.caller(&request, READERS, "GetChild")?;
        let id = convert::record_id(&request.into_inner().record_id)?;
        let record = self.blocking(move |s| s.get_child(&id)).await?;
        Ok(child_reply(&record, false))
    }

    async fn list_children(
        &self,
        request: Request<pb::ListChildrenRequest>,
    ) -> Result<Response<pb::ListChildrenReply>, Status> {
        self.caller(&request, READERS, "ListChildren")?;
        let req = request.into_inner();
        let filter = ChildFilter {
            with_active_plan: req.with_active_plan,
            surname_contains: req.surname_contains,
            limit: if req.limit == 0 {
                100
            } else {
                req.limit as usize
            },
        };
        let (children, total) = self.blocking(move |s| s.list_children(&filter)).await?;
        Ok(Response::new(pb::ListChildrenReply {
            children: children.iter().map(convert::summary_to).collect(),
            total,
        }))
    }

    async fn child_history(
        &self,
        request: Request<pb::GetChildRequest>,
    ) -> Result<Response<pb::ChildHistoryReply>, Status> {
        self.caller(&request, READERS, "ChildHistory")?;
        let id = convert::record_id(&request.into_inner().record_id)?;
        let revisions = self.blocking(move |s| s.child_history(&id)).await?;
        Ok(Response::new(pb::ChildHistoryReply {
            revisions: revisions.iter().map(convert::revision_to).collect(),
        }))
    }

    async fn start_plan(
        &self,
        request: Request<pb::StartPlanRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "StartPlan")?.label();
        let req = request.into_inner();
        let id = convert::record_id(&req.record_id)?;
        let start = convert::plan_start_from(&req)?;
        let record = self
            .blocking(move |s| s.start_plan(&actor, &id, start))
            .await?;
        Ok(child_reply(&record, true))
    }

    async fn change_plan(
        &self,
        request: Request<pb::ChangePlanRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "ChangePlan")?.label();
        let req = request.into_inner();
        let id = convert::record_id(&req.record_id)?;
        let change = convert::plan_change_from(&req)?;
        let (record, changed) = self
            .blocking(move |s| s.change_plan(&actor, &id, change))
            .await?;
        Ok(child_reply(&record, changed))
    }

    async fn record_review(
        &self,
        request: Request<pb::RecordReviewRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "RecordReview")?.label();
        let req = request.into_inner();
        let id = convert::record_id(&req.record_id)?;
        let (held, next) = convert::dates_from(&req.held_on, &req.next_review_date)?;
        let (record, changed) = self
            .blocking(move |s| s.record_review(&actor, &id, held, next))
            .await?;
        Ok(child_reply(&record, changed))
    }

    async fn end_plan(
        &self,
        request: Request<pb::EndPlanRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "EndPlan")?.label();
        let req = request.into_inner();
        let id = convert::record_id(&req.record_id)?;
        let end = convert::plan_end_from(req.end.as_ref())?;
        let record = self.blocking(move |s| s.end_plan(&actor, &id, end)).await?;
        Ok(child_reply(&record, true))
    }

    async fn add_plan_document(
        &self,
        request: Request<pb::AddPlanDocumentRequest>,
    ) -> Result<Response<pb::ChildReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "AddPlanDocument")?.label();
        let req = request.into_inner();
        let id = convert::record_id(&req.record_id)?;
        let date = convert::document_date_from(&req.core_group_date)?;
        if req.content.is_empty() {
            return Err(Status::invalid_argument(
                "content is empty: send the plan pro forma's file",
            ));
        }
        let record = self
            .blocking(move |s| s.add_plan_document(&actor, &id, date, &req.file_name, &req.content))
            .await?;
        Ok(child_reply(&record, true))
    }

    async fn put_organisation(
        &self,
        request: Request<pb::PutOrganisationRequest>,
    ) -> Result<Response<pb::OrganisationReply>, Status> {
        let actor = self.caller(&request, KEEPERS, "PutOrganisation")?.label();
        let org = convert::organisation_from(
            request.get_ref().organisation.as_ref(),
            &actor,
            self.today(),
        )?;
        let (org, changed) = self
            .blocking(move |s| s.put_organisation(&actor, org))
            .await?;
        Ok(Response::new(pb::OrganisationReply {
            organisation: Some(convert::organisation_to(&org)),
            changed,
        }))
    }

    async fn remove_organisation(
        &self,
        request: Request<pb::RemoveOrganisationRequest>,
    ) -> Result<Response<pb::OrganisationReply>, Status> {
        let actor = self
            .caller(&request, KEEPERS, "RemoveOrganisation")?
            .label();
        let id = convert::organisation_id(&request.get_ref().id)?;
        let org = self
            .blocking(move |s| s.remove_organisation(&actor, &id))
            .await?;
        Ok(Response::new(pb::OrganisationReply {
            organisation: Some(convert::organisation_to(&org)),
            changed: true,
        }))
    }

    async fn list_organisations(
        &self,
        request: Request<pb::ListOrganisationsRequest>,
    ) -> Result<Response<pb::ListOrganisationsReply>, Status> {
        self.caller(&request, READERS, "ListOrganisations")?;
        let orgs = self.blocking(|s| s.list_organisations()).await?;
        Ok(Response::new(pb::ListOrganisationsReply {
            organisations: orgs.iter().map(convert::organisation_to).collect(),
        }))
    }

    async fn request_historic_release(
        &self,
        request: Request<pb::HistoricReleaseRequest>,
    ) -> Result<Response<pb::HistoricReleaseReply>, Status> {
        let actor = self
            .caller(&request, KEEPERS, "RequestHistoricRelease")?
            .label();
        let (id, authority, requester, reason) = convert::release_request_from(request.get_ref())?;
        let release = self
            .blocking(move |s| {
                s.request_historic_release(&actor, &id, &authority, &requester, &reason)
            })
            .await?;
        Ok(Response::new(pb::HistoricReleaseReply {
            release: Some(convert::release_to(&release)),
        }))
    }

    async fn decide_historic_release(
        &self,
        request: Request<pb::DecideHistoricReleaseRequest>,
    ) -> Result<Response<pb::HistoricReleaseReply>, Status> {
        let actor = self
            .caller(&request, KEEPERS, "DecideHistoricRelease")?
            .label();
        let req = request.into_inner();
        if req.id.trim().is_empty() {
            return Err(Status::invalid_argument(
                "id of the release request is required, like HR-000001",
            ));
        }
        let release = self
            .blocking(move |s| {
                s.decide_historic_release(&actor, req.id.trim(), req.approve, req.note.trim())
            })
            .await?;
        Ok(Response::new(pb::HistoricReleaseReply {
            release: Some(convert::release_to(&release)),
        }))
    }

    async fn list_historic_releases(
        &self,
        request: Request<pb::ListHistoricReleasesRequest>,
    ) -> Result<Response<pb::ListHistoricReleasesReply>, Status> {
        self.caller(&request, READERS, "ListHistoricReleases")?;
        let releases = self.blocking(|s| s.list_historic_releases()).await?;
        Ok(Response::new(pb::ListHistoricReleasesReply {
            releases: releases.iter().map(convert::release_to).collect(),
        }))
    }

    async fn release_historic_plans(
        &self,
        request: Request<pb::ReleaseHistoricPlansRequest>,
    ) -> Result<Response<pb::ReleaseHistoricPlansReply>, Status> {
        let actor = self
            .caller(&request, KEEPERS, "ReleaseHistoricPlans")?
            .label();
        let id = request.into_inner().id.trim().to_owned();
        let (release, child, plans) = self
            .blocking(move |s| s.release_historic_plans(&actor, &id))
            .await?;
        Ok(Response::new(pb::ReleaseHistoricPlansReply {
            release: Some(convert::release_to(&release)),
            record_id: child.record_id.clone(),
            child_name: child.details.display_name(),
            date_of_birth: child
                .details
                .date_of_birth
                .map(|d| d.to_string())
                .unwrap_or_default(),
            ended_plans: plans.iter().map(convert::plan_to).collect(),
        }))
    }

    type ImportStream = EventStream;

    async fn import(
        &self,
        request: Request<Streaming<pb::ImportChunk>>,
    ) -> Result<Response<Self::ImportStream>, Status> {
        let actor = self.caller(&request, KEEPERS, "Import")?.label();
        let acks = import::start(self.store.clone(), actor, request.into_inner());
        Ok(Response::new(Box::pin(ReceiverStream::new(acks))))
    }

    type ExportAuditStream = AuditStream;

    async fn export_audit(
        &self,
        request: Request<pb::ExportAuditRequest>,
    ) -> Result<Response<Self::ExportAuditStream>, Status> {
        self.caller(&request, READERS, "ExportAudit")?;
        let chain = self.blocking(|s| s.audit_chain()).await?;
        let items = chain
            .entries
            .into_iter()
            .map(|(seq, bytes)| pb::audit_item::Item::Entry(pb::AuditEntry { seq, bytes }))
            .chain(chain.checkpoints.into_iter().map(|c| {
                pb::audit_item::Item::Checkpoint(pb::AuditCheckpoint {
                    bytes: c.bytes,
                    signature: c.signature,
                })
            }))
            .map(|item| Ok(pb::AuditItem { item: Some(item) }));
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn get_authority(
        &self,
        request: Request<pb::GetAuthorityRequest>,
    ) -> Result<Response<pb::AuthorityReply>, Status> {
        self.caller(&request, &Role::ALL, "GetAuthority")?;
        let key = self.store.verifying_key();
        // With the key chain, so a verifier can check checkpoints signed before a rotation.
        let (head, original, rotations) = self
            .blocking(|s| Ok((s.head()?, s.original_key()?, s.rotations()?)))
            .await?;
        Ok(Response::new(pb::AuthorityReply {
            authority_id: self.store.authority().to_owned(),
            name: self.store.authority().to_owned(),
            public_key: key.as_bytes().to_vec(),
            key_id: crate::keys::key_id(&key),
            published_version: head.version,
            state_root: head.state_root,
            entry_count: head.entry_count,
            original_public_key: original.as_bytes().to_vec(),
            key_rotations: rotations
                .iter()
                .map(prost::Message::encode_to_vec)
                .collect(),
        }))
    }
}
