//! The one mapping from domain errors to gRPC statuses.

use tonic::Status;

use crate::convert::FieldError;
use crate::store::StoreError;

impl From<FieldError> for Status {
    fn from(e: FieldError) -> Self {
        Status::invalid_argument(e.0)
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NoSuchChild(_)
            | StoreError::NoSuchOrganisation(_)
            | StoreError::NoSuchRelease(_) => Status::not_found(e.to_string()),
            StoreError::ChildExists(_) => Status::already_exists(e.to_string()),
            StoreError::StaleRevision { .. } => Status::aborted(e.to_string()),
            StoreError::Rule(_)
            | StoreError::NotApproved { .. }
            | StoreError::AlreadyDecided(_) => Status::failed_precondition(e.to_string()),
            StoreError::Invalid(_) => Status::invalid_argument(e.to_string()),
            StoreError::Database(_) | StoreError::Encoding(_) => {
                tracing::error!(error = %e, "store failure");
                Status::internal("the register could not complete the change; nothing was written")
            }
        }
    }
}
