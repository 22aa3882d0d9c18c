//! [`RegistryToken`]: the password for one ECR registry, as every target receives it. It knows no API: the
//! AWS side ([`crate::ecr`]) makes it, the targets write it.

use std::fmt;
use std::time::SystemTime;

use secrecy::SecretString;

/// The password for one ECR registry, decoded from an authorization token.
#[derive(Clone)]
pub struct RegistryToken {
    /// The registry host from `proxyEndpoint`, normalized (see [`crate::address`]), or the address
    /// `REGISTRY_ADDRESS_MAP` gives for it.
    pub host: String,
    /// The addresses to write when an entry for this registry is created: `host` in each form of
    /// `ECR_HOST_FORMS`, or the mapped address. Existing entries are matched in any form.
    pub addresses: Vec<String>,
    /// Always `AWS` for ECR; kept as given.
    pub username: String,
    pub password: SecretString,
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for RegistryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryToken")
            .field("host", &self.host)
            .field("addresses", &self.addresses)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
