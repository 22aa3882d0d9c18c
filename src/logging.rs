//! Log output: readable text for people or one JSON object per line for machines, on standard error.
//!
//! Our own crate logs at the configured level. Dependencies are held at WARN: HTTP-level crates log bodies and
//! headers at their most verbose levels, and those carry tokens. aws-config is held at ERROR: its credential
//! chain WARNs with Debug dumps of nested errors; what failed is said once, in words, by [`crate::ecr`]. At TRACE
//! it may say which credential source it used (DEBUG). Every line goes through [`Redacting`], which takes out any
//! known secret that reached it.

use tracing::Level;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::redact::Redacting;

pub fn filter(level: Level) -> EnvFilter {
    let aws_config = if level == Level::TRACE { Level::DEBUG } else { Level::ERROR };
    let crate_name = env!("CARGO_CRATE_NAME");
    // kube's HTTP layer logs every failed call at ERROR; the Kubernetes target logs each failure itself, with
    // the namespace and what to do.
    EnvFilter::new(format!("warn,{crate_name}={level},aws_config={aws_config},kube_client::client::builder=off"))
}

pub fn init(level: Level, format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter(level)).with_writer(Redacting);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}
