use std::process::ExitCode;

use clap::Parser;

use rancher_ecr_credentials::app;
use rancher_ecr_credentials::config::{Cli, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let web_identity = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some_and(|v| !v.is_empty());
    let config = match Config::from_cli(cli, web_identity) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("rancher-ecr-credentials: configuration error: {e}");
            return app::Exit::BadConfig.into();
        }
    };
    rancher_ecr_credentials::logging::init(config.log_level, config.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rancher-ecr-credentials: cannot start the async runtime: {e}");
            return app::Exit::Failed.into();
        }
    };
    runtime.block_on(app::run(config)).into()
}
