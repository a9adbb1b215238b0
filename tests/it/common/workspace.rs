//! `Workspace`: where a test runs the binary. A temp dir (the working folder, `HOME` and the
//! cache), the gateway its runs talk to (the in-process sandbox, another server such as a
//! [`FakeGateway`](super::FakeGateway), or none) and the credentials for it, which are also the
//! secrets no output may show. Cheap to clone: a scenario of several runs keeps one workspace
//! and runs each command with [`Workspace::dap`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::*;

/// A client secret distinctive enough to search for in every output (the sandbox's own
/// default, `sandbox`, is a word the logs use).
pub const TEST_SECRET: &str = "cs-test-7d1e0a9f44";

/// A temp dir and the gateway a test's runs use.
#[derive(Clone)]
pub struct Workspace {
    inner: Arc<Inner>,
}

struct Inner {
    // The sandbox is dropped before the folder it may still be writing to.
    gateway: Gateway,
    dir: tempfile::TempDir,
}

enum Gateway {
    /// No gateway: no `DAP_*` variable is set (`check`, `plan`, `man`, usage errors).
    None,
    Sandbox {
        sandbox: Sandbox,
        client_id: String,
        secret: String,
        canvas_token: String,
    },
    /// Another server (a made-up or hostile gateway) and the credentials to give it.
    Url {
        url: String,
        client_id: String,
        secret: String,
    },
}

impl Workspace {
    /// A workspace with a sandbox started with `config`; its client secret is
    /// [`TEST_SECRET`] unless `config` names another.
    pub fn new(config: SandboxConfig) -> Self {
        let mut config = config;
        if config.client_secret == SandboxConfig::default().client_secret {
            config.client_secret = TEST_SECRET.to_owned();
        }
        let gateway = Gateway::Sandbox {
            client_id: config.client_id.clone(),
            secret: config.client_secret.clone(),
            canvas_token: config.canvas_token.clone(),
            sandbox: Sandbox::start(config).expect("sandbox starts"),
        };
        Self::with(gateway)
    }

    /// A workspace with a sandbox that injects `faults`.
    pub fn with_faults(faults: Faults) -> Self {
        Self::new(SandboxConfig {
            faults,
            ..Default::default()
        })
    }

    /// A workspace with a default sandbox.
    pub fn default_sandbox() -> Self {
        Self::new(SandboxConfig::default())
    }

    /// A workspace with no gateway and no `DAP_*` variable.
    pub fn bare() -> Self {
        Self::with(Gateway::None)
    }

    /// A workspace whose runs talk to the gateway at `url` with these credentials.
    pub fn at(url: &str, client_id: &str, secret: &str) -> Self {
        Self::with(Gateway::Url {
            url: url.to_owned(),
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    fn with(gateway: Gateway) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Workspace {
            inner: Arc::new(Inner { gateway, dir }),
        }
    }

    /// The temp dir.
    pub fn path(&self) -> &Path {
        self.inner.dir.path()
    }

    /// The sandbox; panics when the workspace has another gateway.
    #[track_caller]
    pub fn sandbox(&self) -> &Sandbox {
        match &self.inner.gateway {
            Gateway::Sandbox { sandbox, .. } => sandbox,
            _ => panic!("this workspace has no sandbox"),
        }
    }

    /// The gateway's URL (`DAP_API_URL`), if there is one.
    pub fn url(&self) -> Option<String> {
        match &self.inner.gateway {
            Gateway::None => None,
            Gateway::Sandbox { sandbox, .. } => Some(sandbox.url()),
            Gateway::Url { url, .. } => Some(url.clone()),
        }
    }

    /// Counters of the sandbox.
    pub fn counters(&self) -> Counters {
        self.sandbox().counters()
    }

    /// What no output may show: the client secret, its base64 Basic form, the Canvas API token
    /// and any token the sandbox issues (JWTs, which all start `eyJ`).
    pub fn secrets(&self) -> Vec<String> {
        use base64::Engine as _;
        let basic = |id: &str, secret: &str| {
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        };
        match &self.inner.gateway {
            Gateway::None => Vec::new(),
            Gateway::Sandbox {
                client_id,
                secret,
                canvas_token,
                ..
            } => vec![
                secret.clone(),
                basic(client_id, secret),
                canvas_token.clone(),
                "eyJ".to_owned(),
            ],
            Gateway::Url {
                client_id, secret, ..
            } => vec![secret.clone(), basic(client_id, secret)],
        }
    }

    /// Copies `examples/<name>` into the workspace; returns its path.
    pub fn example(&self, name: &str) -> PathBuf {
        let to = self.path().join(name);
        std::fs::copy(examples_dir().join(name), &to).expect("copy example");
        to
    }

    /// Writes a file into the workspace (folders created); returns its path.
    pub fn job(&self, name: &str, text: &str) -> PathBuf {
        let to = self.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).expect("create the file's folder");
        std::fs::write(&to, text).expect("write the file");
        to
    }

    /// Reads a file under the workspace.
    #[track_caller]
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// A command of the binary in this workspace, to state what it must do and run:
    /// `ws.dap().args(&["check", "job.toml"]).status(0).run()`.
    pub fn dap(&self) -> Test {
        Test::in_workspace(self.clone())
    }

    /// The binary, in the workspace, with a clean environment: no variable of the developer's
    /// (only `PATH` and `LANG`), `HOME` and `XDG_CACHE_HOME` in the temp dir, `TERM=dumb`, and
    /// the gateway's URL and credentials. Used by [`Test`]; a test takes it only to hand it to
    /// another program (`script` for a terminal, `setpriv`) through [`Test::wrap`].
    pub(super) fn command(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("dap-run"));
        let dir = self.path();
        c.current_dir(dir).env_clear();
        for keep in ["PATH", "LANG", "SYSTEMROOT"] {
            if let Ok(v) = std::env::var(keep) {
                c.env(keep, v);
            }
        }
        c.env("HOME", dir)
            .env("XDG_CACHE_HOME", dir.join(".cache"))
            .env("TERM", "dumb");
        match &self.inner.gateway {
            Gateway::None => {}
            Gateway::Sandbox {
                sandbox,
                client_id,
                secret,
                ..
            } => {
                c.env("DAP_API_URL", sandbox.url())
                    .env("DAP_CLIENT_ID", client_id)
                    .env("DAP_CLIENT_SECRET", secret);
            }
            Gateway::Url {
                url,
                client_id,
                secret,
            } => {
                c.env("DAP_API_URL", url)
                    .env("DAP_CLIENT_ID", client_id)
                    .env("DAP_CLIENT_SECRET", secret);
            }
        }
        c
    }
}
