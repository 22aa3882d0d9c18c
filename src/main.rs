use std::process::ExitCode;

use clap::FromArgMatches;

use rancher_ecr_credentials::app;
use rancher_ecr_credentials::config::{self, Cli, Command, Config};

fn main() -> ExitCode {
    let matches = config::cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(Command::Healthcheck) = cli.command {
        return healthcheck(&cli);
    }
    let web_identity = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some_and(|v| !v.is_empty());
    let config = match Config::from_matches(&matches, web_identity) {
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

/// `rancher-ecr-credentials healthcheck`: needs only the listen settings, not the whole configuration.
fn healthcheck(cli: &Cli) -> ExitCode {
    let address = match config::listen_address(cli) {
        Ok(address) => address,
        Err(e) => {
            eprintln!("rancher-ecr-credentials: configuration error: {e}");
            return app::Exit::BadConfig.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rancher-ecr-credentials healthcheck: cannot start the async runtime: {e}");
            return app::Exit::Failed.into();
        }
    };
    match runtime.block_on(rancher_ecr_credentials::server::healthcheck(address)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rancher-ecr-credentials healthcheck: not ready: {e}");
            app::Exit::Failed.into()
        }
    }
}
