//! The request vocabulary the transport and the job model share: HTTP methods and request
//! budgets per route. They live here, below the job model, so that the transport depends on
//! nothing above it; `job::model` re-exports them.

use std::time::Duration;

use super::route::Route;

/// A request budget for the routes that match a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// The method and path pattern (`*` matching one segment) the budget applies to.
    pub route: Route,
    /// Requests allowed per `per`; `None` means unlimited.
    pub limit: Option<u32>,
    /// The window.
    pub per: Duration,
}

/// HTTP methods a step can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}
