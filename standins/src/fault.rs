//! Misbehaviour on demand: a [`Fault`] matches some requests and replaces the normal answer.

use std::sync::Mutex;

/// How a faulty answer looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status and a body shaped like the service's own errors.
    Status(u16),
    /// Accept the request and never answer.
    Hang,
    /// Close the connection without answering.
    DropConnection,
    /// Send the headers of a normal answer, part of its body, then close the connection.
    Truncated,
    /// Answer 200 with an HTML page instead of JSON (a proxy's error page, say).
    NotJson,
    /// An AWS error: `{"__type": type_name, "message": ...}` with this status.
    EcrError { type_name: String, status: u16 },
    /// Answer with exactly this status, content type and body (a malformed answer, say).
    Raw { status: u16, content_type: String, body: String },
    /// Hand the request on without this query parameter, as a proxy or gateway that drops it would: a filter
    /// the service then never sees.
    DropQuery(String),
    /// Answer 200 with a body of 2 GiB (with a Content-Length) that is sent as fast as it is read.
    HugeBody,
    /// Answer 200 with a chunked body that never ends.
    EndlessBody,
    /// Answer with this status and an error whose message echoes the whole request, as a debug page or a
    /// careless proxy would: request line, every header (Authorization included) and the body, with newlines.
    EchoRequest(u16),
    /// Answer as normal, but with a `pagination.next` link to a page that was never seen before, every time.
    EndlessPages,
}

/// Which requests misbehave, how, and how many times.
#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    /// `None`: every matching request, until the faults are cleared.
    pub times: Option<u32>,
    pub method: Option<String>,
    pub path_contains: Option<String>,
}

impl Fault {
    pub fn new(kind: FaultKind) -> Fault {
        Fault { kind, times: None, method: None, path_contains: None }
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path and query contain this text.
    pub fn path(mut self, needle: &str) -> Fault {
        self.path_contains = Some(needle.to_string());
        self
    }

    fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.path_contains.as_deref().is_none_or(|p| path_and_query.contains(p))
    }
}

/// The faults of one stand-in.
#[derive(Default, Debug)]
pub(crate) struct Faults {
    active: Mutex<Vec<Fault>>,
}

impl Faults {
    pub(crate) fn add(&self, fault: Fault) {
        self.active.lock().unwrap().push(fault);
    }

    pub(crate) fn clear(&self) {
        self.active.lock().unwrap().clear();
    }

    /// The fault for this request, if any, counting it against the fault's budget.
    pub(crate) fn take(&self, method: &str, path_and_query: &str) -> Option<FaultKind> {
        let mut active = self.active.lock().unwrap();
        let index = active.iter().position(|f| f.matches(method, path_and_query))?;
        let kind = active[index].kind.clone();
        if let Some(times) = active[index].times.as_mut() {
            *times -= 1;
            if *times == 0 {
                active.remove(index);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_with_a_budget_is_used_up_and_filters_apply() {
        let faults = Faults::default();
        faults.add(Fault::new(FaultKind::Status(500)).times(2).method("put").path("/registrycredentials/"));
        assert_eq!(faults.take("GET", "/v1/registrycredentials/1c1"), None);
        assert_eq!(faults.take("PUT", "/v1/registries/1sp1"), None);
        assert_eq!(faults.take("PUT", "/v1/registrycredentials/1c1"), Some(FaultKind::Status(500)));
        assert_eq!(faults.take("PUT", "/v1/registrycredentials/1c1"), Some(FaultKind::Status(500)));
        assert_eq!(faults.take("PUT", "/v1/registrycredentials/1c1"), None);
    }

    #[test]
    fn a_fault_without_budget_stays_until_cleared() {
        let faults = Faults::default();
        faults.add(Fault::new(FaultKind::Hang));
        for _ in 0..5 {
            assert_eq!(faults.take("GET", "/"), Some(FaultKind::Hang));
        }
        faults.clear();
        assert_eq!(faults.take("GET", "/"), None);
    }
}
