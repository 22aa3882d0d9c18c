//! Settings: the command line and the environment, or a configuration file, checked into a [`Config`].
//!
//! All input checking happens here, before any network call. The names of the environment variables are the
//! ones the Go `rancher-ecr-credentials` used, so swapping the image keeps a deployment working. Every problem is
//! reported as one [`ConfigError`] line that names the setting (in the form it was given in) and what is wrong
//! with its value.
//!
//! - [`cli`]: the command line (the daemon's own flags, and a flag for every setting the APIs declare);
//! - [`env`](mod@env): the environment form, one source and one target of each kind;
//! - [`file`](mod@file): the file form, several of each;
//! - [`checks`]: the checks of the daemon's own settings;
//! - [`plan`]: the [`Plan`] both forms give, and its description for `--check-config`.
//!
//! # Adding a setting
//! A setting of a target or a source belongs to the API it configures, which declares it once as a
//! [`crate::setting::Setting`] (variable, flag, file key, help) in its settings module:
//! [`crate::rancher::settings`], [`crate::ecr::settings`] or [`crate::kubernetes::settings`]. So a new
//! Kubernetes setting touches three places, all in `src/kubernetes/`:
//! 1. declare it in `settings.rs` and list it in `SETTINGS` (this gives its flag, its `--help`, its
//!    environment variable and its file key, and the warning when a file replaces it);
//! 2. read and check it in `settings::check`, naming any other setting in a message with `given.name(&OTHER)`
//!    (so both forms spell it their way);
//! 3. add its field to `Settings` and use it where the target works.
//!
//! Say it in the README's settings table, and in [`plan::describe`] when `--check-config` should show it.
//! A setting of the daemon itself (not of a target or source) is a field of [`cli::Cli`], checked in
//! [`Config::from_matches`].

pub mod checks;
pub mod cli;
pub mod env;
pub mod error;
pub mod file;
pub mod plan;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgMatches, FromArgMatches};

use crate::address::HostForm;
use crate::schedule::{Backoff, Schedule};
use crate::setting::non_empty;
pub use checks::{DEFAULT_LISTEN_PORT, listen_address};
pub use cli::{Cli, Command};
pub use error::ConfigError;
use error::invalid;
pub use plan::Plan;

/// A checked configuration. Built only by [`Config::from_matches`].
#[derive(Debug)]
pub struct Config {
    /// Where tokens come from and which targets they go to.
    pub plan: Plan,
    /// Target and source settings of the environment that the configuration file replaced.
    pub ignored: Vec<&'static str>,
    pub listen: SocketAddr,
    pub log_level: tracing::Level,
    pub log_format: LogFormat,
    pub schedule: Schedule,
    pub backoff: Backoff,
    /// How many targets are refreshed at the same time.
    pub concurrency: usize,
    /// One refresh, then exit (also set by `dry_run`).
    pub once: bool,
    /// Read from AWS and the targets, write nothing, print what would change.
    pub dry_run: bool,
    /// Print the plan and exit without calling anything.
    pub check_config: bool,
    /// Secrets given as command-line flags (visible to every local user); warned about at start.
    pub secret_flags: Vec<String>,
    /// The host forms of each ECR registry written where entries are created.
    pub host_forms: Vec<HostForm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(6 * 3600);
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The time limit of each call to a target (RANCHER_TIMEOUT), and its bounds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

impl Config {
    /// Checks every setting of the command line ([`cli::command`]'s matches). `web_identity` tells whether
    /// AWS_WEB_IDENTITY_TOKEN_FILE is set, in which case AWS_ROLE_ARN belongs to the web identity provider of
    /// the default chain and is not assumed again.
    pub fn from_matches(matches: &ArgMatches, web_identity: bool) -> Result<Config, ConfigError> {
        let cli = Cli::from_arg_matches(matches).map_err(|e| invalid("arguments", e.to_string()))?;
        let listen = listen_address(&cli)?;
        let log_level = match non_empty(cli.log_level.clone()) {
            Some(value) => checks::parse_log_level(&value)?,
            None => tracing::Level::INFO,
        };
        let log_format = match non_empty(cli.log_format.clone()).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid("LOG_FORMAT", format!("'{other}' is not a log format; use text or json")));
            }
        };
        let refresh_interval = match non_empty(cli.refresh_interval.clone()) {
            Some(value) => checks::parse_duration("REFRESH_INTERVAL", &value)?,
            None => DEFAULT_REFRESH_INTERVAL,
        };
        let schedule =
            Schedule::with_max_interval(refresh_interval).map_err(|problem| invalid("REFRESH_INTERVAL", problem))?;
        let backoff = checks::backoff(cli.retry_delay.clone(), cli.retry_max_delay.clone())?;
        let timeout = match non_empty(cli.rancher_timeout.clone()) {
            Some(value) => checks::bounded("RANCHER_TIMEOUT", &value, MIN_TIMEOUT, MAX_TIMEOUT)?,
            None => DEFAULT_TIMEOUT,
        };
        let concurrency = match non_empty(cli.max_concurrent_targets.clone()) {
            Some(value) => match value.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    return Err(invalid("MAX_CONCURRENT_TARGETS", format!("'{value}' is not a number from 1 to 64")));
                }
            },
            None => DEFAULT_CONCURRENCY,
        };
        if cli.check_config && cli.once {
            return Err(invalid("--check-config", "cannot be combined with --once; it calls nothing"));
        }
        let host_forms = match non_empty(cli.ecr_host_forms.clone()) {
            Some(value) => checks::parse_host_forms(&value)?,
            None => vec![HostForm::Standard],
        };
        let (once, dry_run, check_config) = (cli.once || cli.dry_run, cli.dry_run, cli.check_config);

        let given = env::Env(matches);
        let (plan, ignored) = match cli.config_file.clone().filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => (file::plan(&path, timeout)?, env::replaced_by_file(&given)),
            None => (env::plan(&given, web_identity, timeout)?, Vec::new()),
        };
        Ok(Config {
            plan,
            ignored,
            listen,
            log_level,
            log_format,
            schedule,
            backoff,
            concurrency,
            once,
            dry_run,
            check_config,
            secret_flags: cli::secret_flags_given(matches),
            host_forms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rancher::settings::RancherAuth;

    fn matches(args: &[&str]) -> ArgMatches {
        let mut all = vec!["rancher-ecr-credentials"];
        all.extend_from_slice(args);
        cli::command().try_get_matches_from(all).expect("test arguments parse")
    }

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_matches(&matches(args), false)
    }

    const URL: &str = "--cattle-url=http://rancher:8080/v1";

    #[test]
    fn the_first_line_of_help_names_rancher_and_kubernetes() {
        let help = cli::command().render_help().to_string();
        let first = help.lines().next().unwrap_or_default();
        assert!(first.contains("Rancher") && first.contains("Kubernetes"), "{first}");
    }

    #[test]
    fn the_environment_form_names_other_settings_by_their_variables() {
        let err = config(&[URL, "--cattle-access-key=ak"]).unwrap_err();
        assert_eq!(err.to_string(), "CATTLE_SECRET_KEY: not set, but CATTLE_ACCESS_KEY is; set both or neither");
    }

    #[test]
    fn the_file_form_names_the_line_the_table_and_its_keys() {
        let file = std::env::temp_dir().join(format!("recs-file-form-{}.toml", std::process::id()));
        let text = "[[source]]\nname = \"a\"\n\n[[target]]\nname = \"x\"\nurl = \"http://rancher:8080/v1\"\naccess_key = \"ak\"\nauto_create = true\n";
        std::fs::write(&file, text).unwrap();
        let err = file::plan(&file, DEFAULT_TIMEOUT).unwrap_err();
        let shown = file.display();
        assert_eq!(
            err.to_string(),
            format!("{shown} line 4: target 'x'.secret_key: not set, but access_key is; set both or neither")
        );
        std::fs::write(&file, text.replace("auto_create = true", "auto_create = \"maybe\"")).unwrap();
        let err = file::plan(&file, DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(err.to_string(), format!("{shown} line 8: target 'x'.auto_create: expected true or false"));
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn kubernetes_settings_select_a_second_target_beside_rancher() {
        let file = std::env::temp_dir().join(format!("recs-kubeconfig-{}", std::process::id()));
        std::fs::write(
            &file,
            "clusters: [{name: c, cluster: {server: 'https://k8s:6443'}}]\nusers: [{name: u, user: {token: t0k3n}}]\ncontexts: [{name: main, context: {cluster: c, user: u}}, {name: other, context: {cluster: c, user: u}}]\ncurrent-context: main\n",
        )
        .unwrap();
        let kubeconfig = format!("--kubeconfig={}", file.display());
        let both = config(&[URL, "--kubernetes-namespaces=apps,team-*", &kubeconfig]).unwrap();
        assert_eq!((both.plan.targets.len(), both.plan.kube_targets.len()), (1, 1));
        let kube = &both.plan.kube_targets[0].kubernetes;
        assert_eq!(kube.connection.server(), "https://k8s:6443");
        assert_eq!(kube.target.secret_name, "ecr-credentials");
        assert!(!format!("{both:?}").contains("t0k3n"), "the kubeconfig's token stays out of Debug output");

        let only = config(&["--rancher-project-secrets=c-a:p-b", &kubeconfig, "--kubernetes-context=other"]).unwrap();
        assert_eq!((only.plan.targets.len(), only.plan.kube_targets.len()), (0, 1));
        let crate::kubernetes::Mode::Projects(projects) = &only.plan.kube_targets[0].kubernetes.target.mode else {
            panic!("project mode expected")
        };
        assert_eq!(projects, &["c-a:p-b"]);
        let patterns = config(&["--rancher-project-secrets=c-a:*, local:p-b", &kubeconfig]).unwrap();
        let described = plan::describe(&patterns.plan, &[], &["k".into()]);
        assert!(
            described.contains("projects: c-a:* (every project of cluster c-a, watched), local:p-b"),
            "{described}"
        );
        let err = config(&["--rancher-project-secrets=c-a:p*", &kubeconfig]).unwrap_err();
        assert_eq!(err.setting, "RANCHER_PROJECT_SECRETS");

        let stray = config(&[URL, "--kubernetes-secret-name=x", &kubeconfig]).unwrap_err();
        assert_eq!(stray.setting, "KUBERNETES_NAMESPACES");
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn minimal_settings_give_the_predecessors_defaults() {
        let config = config(&[URL]).unwrap();
        assert!(!config.plan.targets[0].auto_create);
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.log_level, tracing::Level::INFO);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.schedule.max_interval, Duration::from_secs(6 * 3600));
        assert!(matches!(config.plan.targets[0].rancher.auth, RancherAuth::None));
        assert!(config.plan.sources[0].aws.registry_ids.is_empty());
        assert!(config.plan.sources[0].aws.assume_role.is_none());
    }

    #[test]
    fn missing_cattle_url_names_the_variable() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_URL");
        assert!(err.problem.contains("not set"), "{err}");
    }

    #[test]
    fn malformed_cattle_url_names_the_variable() {
        for bad in ["rancher:8080", "ftp://rancher/v1", "http://", "not a url", "http://user:pw@rancher/v1"] {
            let err = config(&[&format!("--cattle-url={bad}")]).unwrap_err();
            assert_eq!(err.setting, "CATTLE_URL", "{bad}: {err}");
        }
    }

    #[test]
    fn booleans_accept_what_go_accepted_and_reject_the_rest() {
        for (text, value) in
            [("true", true), ("TRUE", true), ("1", true), ("t", true), ("false", false), ("0", false), ("F", false)]
        {
            assert_eq!(crate::setting::parse_bool_text(text), Ok(value), "{text}");
        }
        let err = config(&[URL, "--auto-create=maybe"]).unwrap_err();
        assert_eq!(err.to_string(), "AUTO_CREATE: 'maybe' is not a boolean; use true or false");
    }

    #[test]
    fn an_empty_auto_create_from_a_template_means_false() {
        assert!(!config(&[URL, "--auto-create="]).unwrap().plan.targets[0].auto_create);
    }

    #[test]
    fn listen_port_must_be_a_port() {
        for bad in ["0", "65536", "http", "-1"] {
            let err = config(&[URL, &format!("--listen-port={bad}")]).unwrap_err();
            assert_eq!(err.setting, "LISTEN_PORT", "{bad}");
        }
        assert_eq!(config(&[URL, "--listen-port=9090"]).unwrap().listen.port(), 9090);
    }

    #[test]
    fn log_levels_include_the_logrus_names() {
        assert_eq!(config(&[URL, "--log-level=WARNING"]).unwrap().log_level, tracing::Level::WARN);
        assert_eq!(config(&[URL, "--log-level=Debug"]).unwrap().log_level, tracing::Level::DEBUG);
        assert_eq!(config(&[URL, "--log-level=verbose"]).unwrap_err().setting, "LOG_LEVEL");
        assert_eq!(config(&[URL, "--log-format=xml"]).unwrap_err().setting, "LOG_FORMAT");
        assert_eq!(config(&[URL, "--log-format=JSON"]).unwrap().log_format, LogFormat::Json);
    }

    #[test]
    fn registry_ids_are_twelve_digit_accounts() {
        let checked = config(&[URL, "--aws-ecr-registry-ids= 111122223333, 444455556666,111122223333,"]).unwrap();
        assert_eq!(checked.plan.sources[0].aws.registry_ids, vec!["111122223333", "444455556666"]);
        for bad in ["12345", "11112222333a", "111122223333;444455556666"] {
            let err = config(&[URL, &format!("--aws-ecr-registry-ids={bad}")]).unwrap_err();
            assert_eq!(err.setting, "AWS_ECR_REGISTRY_IDS", "{bad}");
        }
    }

    #[test]
    fn region_must_look_like_a_region() {
        assert_eq!(
            config(&[URL, "--aws-region=eu-west-1"]).unwrap().plan.sources[0].aws.region.as_deref(),
            Some("eu-west-1")
        );
        for bad in ["EU-WEST-1", "eu west 1", "useast1", "-x"] {
            assert_eq!(config(&[URL, &format!("--aws-region={bad}")]).unwrap_err().setting, "AWS_REGION", "{bad}");
        }
    }

    #[test]
    fn role_arn_is_checked_and_assumed_unless_web_identity_owns_it() {
        let arn = "--aws-role-arn=arn:aws:iam::111122223333:role/ecr-reader";
        let assume = config(&[URL, arn]).unwrap().plan.sources.remove(0).aws.assume_role.unwrap();
        assert_eq!(assume.role_arn, "arn:aws:iam::111122223333:role/ecr-reader");
        assert_eq!(assume.session_name, "rancher-ecr-credentials");

        let web = Config::from_matches(&matches(&[URL, arn]), true).unwrap();
        assert!(web.plan.sources[0].aws.assume_role.is_none());

        for bad in ["arn:aws:iam::1111:role/x", "arn:aws:s3:::bucket", "role/x", "arn:aws:iam::111122223333:user/x"] {
            let err = config(&[URL, &format!("--aws-role-arn={bad}")]).unwrap_err();
            assert_eq!(err.setting, "AWS_ROLE_ARN", "{bad}");
        }
        assert_eq!(config(&[URL, "--aws-role-external-id=x"]).unwrap_err().setting, "AWS_ROLE_EXTERNAL_ID");
        assert_eq!(config(&[URL, arn, "--aws-role-session-name=a b"]).unwrap_err().setting, "AWS_ROLE_SESSION_NAME");
    }

    #[test]
    fn keys_come_in_pairs_and_from_files() {
        let err = config(&[URL, "--cattle-access-key=ak"]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_SECRET_KEY");

        let dir = std::env::temp_dir().join(format!("recr-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let file_arg = format!("--cattle-secret-key-file={}", file.display());
        let config_ok = config(&[URL, "--cattle-access-key=ak", &file_arg]).unwrap();
        let RancherAuth::Keys(creds) = &config_ok.plan.targets[0].rancher.auth else { panic!("keys expected") };
        assert_eq!(creds.access_key.expose(), "ak");
        assert_eq!(creds.secret_key.expose(), "s3cr3t");

        let both = config(&[URL, "--cattle-access-key=ak", "--cattle-secret-key=x", &file_arg]).unwrap_err();
        assert_eq!(both.setting, "CATTLE_SECRET_KEY_FILE");
        let missing = config(&[URL, "--cattle-access-key=ak", "--cattle-secret-key-file=/nonexistent/x"]).unwrap_err();
        assert_eq!(missing.setting, "CATTLE_SECRET_KEY_FILE");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_ca_bundle_must_hold_a_certificate() {
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ca.pem");
        let config_ok = config(&[URL, &format!("--cattle-ca-bundle={pem}")]).unwrap();
        assert!(config_ok.plan.targets[0].rancher.tls.ca_bundle.is_some());
        let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let err = config(&[URL, &format!("--cattle-ca-bundle={not_pem}")]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_CA_BUNDLE");
        assert!(err.problem.contains("no PEM certificate"), "{err}");
        let err = config(&[URL, "--cattle-ca-bundle=/nonexistent/ca.pem"]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_CA_BUNDLE");
        assert_eq!(
            config(&[URL, "--cattle-insecure-skip-verify=perhaps"]).unwrap_err().setting,
            "CATTLE_INSECURE_SKIP_VERIFY"
        );
    }

    #[test]
    fn rancher_2_settings_are_checked_against_the_url() {
        let v3 = "--cattle-url=https://rancher.example.com/v3";
        let config_ok = config(&[v3, "--rancher-projects=c-a:p-b, local:p-c"]).unwrap();
        assert_eq!(config_ok.plan.targets[0].rancher.projects, vec!["c-a:p-b", "local:p-c"]);
        assert_eq!(config(&[v3, "--rancher-projects=p-b"]).unwrap_err().setting, "RANCHER_PROJECTS");
        assert_eq!(config(&[URL, "--rancher-projects=c-a:p-b"]).unwrap_err().setting, "RANCHER_PROJECTS");
        assert_eq!(config(&[URL, "--rancher-cluster=c-a"]).unwrap_err().setting, "RANCHER_CLUSTER");
        let project_url = "--cattle-url=https://r/v3/projects/c-a:p-b";
        assert_eq!(config(&[project_url, "--rancher-cluster=c-a"]).unwrap_err().setting, "RANCHER_CLUSTER");
        assert_eq!(config(&[v3, "--rancher-cluster=C A"]).unwrap_err().setting, "RANCHER_CLUSTER");
        assert_eq!(config(&[v3, "--rancher-api=v4"]).unwrap_err().setting, "RANCHER_API");
        assert_eq!(config(&[v3, "--rancher-api=cattle"]).unwrap_err().setting, "CATTLE_URL");
        let token = config(&[v3, "--rancher-token=token-abcde:s3cr3t"]).unwrap();
        assert!(matches!(token.plan.targets[0].rancher.auth, RancherAuth::Token(_)));
        let both = config(&[v3, "--rancher-token=t:s", "--cattle-access-key=a", "--cattle-secret-key=b"]);
        assert_eq!(both.unwrap_err().setting, "RANCHER_TOKEN");
    }

    #[test]
    fn the_projects_check_interval_is_for_a_v3_root_that_covers_every_project() {
        let v3 = "--cattle-url=https://rancher.example.com/v3";
        let default = config(&[v3, "--rancher-cluster=c-a"]).unwrap();
        assert_eq!(default.plan.targets[0].rancher.projects_check_interval, Duration::from_secs(300));
        let set = config(&[v3, "--rancher-projects-check-interval=30s"]).unwrap();
        assert_eq!(set.plan.targets[0].rancher.projects_check_interval, Duration::from_secs(30));
        let described = plan::describe(&set.plan, &[], &["t".into()]);
        assert!(described.contains("new projects: looked for every 30s"), "{described}");
        for bad in [
            vec![v3, "--rancher-projects-check-interval=0s"],
            vec![v3, "--rancher-projects-check-interval=often"],
            vec![v3, "--rancher-projects=c-a:p-b", "--rancher-projects-check-interval=1m"],
            vec!["--cattle-url=https://r/v3/projects/c-a:p-b", "--rancher-projects-check-interval=1m"],
            vec![URL, "--rancher-projects-check-interval=1m"],
        ] {
            let err = config(&bad).unwrap_err();
            assert_eq!(err.setting, "RANCHER_PROJECTS_CHECK_INTERVAL", "{bad:?}: {err}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let config = config(&[URL, "--cattle-access-key=ak", "--cattle-secret-key=very-secret-value"]).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret-value"), "{debug}");
    }

    #[test]
    fn the_external_id_can_come_from_a_file() {
        let dir = std::env::temp_dir().join(format!("recs-external-id-{}", std::process::id()));
        std::fs::write(&dir, "from-a-file\n").unwrap();
        let file = format!("--aws-role-external-id-file={}", dir.display());
        let arn = "--aws-role-arn=arn:aws:iam::123456789012:role/reader";
        let config_ok = config(&[URL, arn, &file]).unwrap();
        let role = config_ok.plan.sources[0].aws.assume_role.as_ref().unwrap();
        assert_eq!(role.external_id.as_ref().unwrap().expose(), "from-a-file");
        let both = config(&[URL, arn, &file, "--aws-role-external-id=x"]).unwrap_err();
        assert_eq!(both.setting, "AWS_ROLE_EXTERNAL_ID_FILE");
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn retry_delays_and_the_rancher_timeout_are_checked() {
        let config_ok = config(&[URL, "--retry-delay=200ms", "--retry-max-delay=2s", "--rancher-timeout=1s"]).unwrap();
        assert_eq!(config_ok.backoff.initial, Duration::from_millis(200));
        assert_eq!(config_ok.backoff.max, Duration::from_secs(2));
        assert_eq!(config_ok.plan.targets[0].rancher.timeout, Duration::from_secs(1));
        let defaults = config(&[URL]).unwrap();
        assert_eq!(
            (defaults.backoff.initial, defaults.backoff.max),
            (Duration::from_secs(5), Duration::from_secs(300))
        );
        assert_eq!(defaults.plan.targets[0].rancher.timeout, Duration::from_secs(30));
        // A first delay above the default maximum raises the maximum with it.
        assert_eq!(config(&[URL, "--retry-delay=10m"]).unwrap().backoff.max, Duration::from_secs(600));
        assert_eq!(config(&[URL, "--retry-delay=10s", "--retry-max-delay=5s"]).unwrap_err().setting, "RETRY_MAX_DELAY");
        assert_eq!(config(&[URL, "--retry-delay=1ms"]).unwrap_err().setting, "RETRY_DELAY");
        assert_eq!(config(&[URL, "--rancher-timeout=2h"]).unwrap_err().setting, "RANCHER_TIMEOUT");
        assert_eq!(config(&[URL, "--rancher-timeout=fast"]).unwrap_err().setting, "RANCHER_TIMEOUT");
    }

    #[test]
    fn refresh_interval_accepts_human_durations() {
        assert_eq!(config(&[URL, "--refresh-interval=90m"]).unwrap().schedule.max_interval, Duration::from_secs(5400));
        assert_eq!(config(&[URL, "--refresh-interval=3600"]).unwrap().schedule.max_interval, Duration::from_secs(3600));
        assert_eq!(config(&[URL, "--refresh-interval=soon"]).unwrap_err().setting, "REFRESH_INTERVAL");
        assert_eq!(config(&[URL, "--refresh-interval=1s"]).unwrap_err().setting, "REFRESH_INTERVAL");
    }
}
