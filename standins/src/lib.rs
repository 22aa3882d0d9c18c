//! Loopback stand-ins of the services the daemon talks to, faithful enough to test it end to end:
//!
//! * [`ecr::FakeEcr`]: Amazon ECR's `GetAuthorizationToken` over awsJson1.1;
//! * [`cattle::FakeCattle`]: the Rancher 1.x Cattle API (`/v1`, `/v2-beta`) for registries and their credentials;
//! * [`rancher2::FakeRancher2`]: Rancher 2's norman `/v3` API for projects and their docker credentials;
//! * [`sts::FakeSts`]: AWS STS `AssumeRole`, telling roles apart by the access keys it hands out;
//! * [`pod_identity::FakePodIdentityAgent`]: the EKS Pod Identity agent's `GET /v1/credentials`, serving
//!   credentials only for the token it accepts;
//! * [`proxy::FakeProxy`]: a forward proxy (`CONNECT` tunnels, plain or TLS-inspecting, and plain HTTP), with
//!   [`proxy::TestCa`] and [`proxy::TlsOrigin`] for the TLS it needs;
//!
//! Each one listens on 127.0.0.1, records every request it receives, and can be told to misbehave with a
//! [`Fault`]. They run on the caller's tokio runtime and stop with it.

pub mod cattle;
pub mod ecr;
pub mod fault;
pub mod pod_identity;
pub mod proxy;
pub mod rancher2;
mod server;
pub mod sts;

pub use fault::{Fault, FaultKind};
pub use server::HttpRequest;
