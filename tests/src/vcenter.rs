//! The `harbor` Supervisor joined to a simulated vCenter, and the plugin run against both: the set-up of
//! every test of a Supervisor Service's life through vCenter.

use std::path::PathBuf;

use supsvc_sim::vcenter::{Release, Vcenter, VcenterOptions};

use crate::Supervisor;
use crate::plugin::{Run, Via, supsvc_command};

/// The administrator password the simulated vCenter accepts.
pub const PASSWORD: &str = "VMware1!";
/// Controller periods of these tests' Supervisor, as a fraction of the real ones.
pub const TIME_SCALE: f64 = 0.001;

/// A `harbor` Supervisor, its vCenter and that vCenter's CA on disk.
pub struct Site {
    pub sup: Supervisor,
    pub vc: Vcenter,
    /// vCenter's CA certificate (PEM), for `SUPSVC_VCENTER_CA_FILE`.
    pub ca: PathBuf,
}

impl Site {
    /// Starts the site with vCenter at `release` and default options.
    pub async fn start(release: Release) -> Site {
        Site::start_with(VcenterOptions {
            release,
            ..Default::default()
        })
        .await
    }

    /// Starts the site; the vCenter's request log starts empty.
    pub async fn start_with(options: VcenterOptions) -> Site {
        let sup = Supervisor::start("harbor", TIME_SCALE).await;
        let vc = sup
            .sim
            .start_vcenter(options)
            .await
            .expect("vCenter starts");
        let ca = sup.dir.path().join("vcenter-ca.pem");
        std::fs::write(&ca, &vc.ca_pem).expect("CA written");
        vc.clear_requests();
        Site { sup, vc, ca }
    }

    /// `kubectl supsvc ARGS` with vCenter's CA and password in the environment (`--vcenter` is the
    /// caller's), an undo directory of the test's own, and `env` last.
    pub async fn supsvc(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = supsvc_command(Via::Kubectl, &self.sup.kubeconfig);
        cmd.args(args)
            .env("SUPSVC_VCENTER_PASSWORD", PASSWORD)
            .env("SUPSVC_VCENTER_CA_FILE", &self.ca)
            .env("SUPSVC_UNDO_DIR", self.sup.dir.path().join("undo"))
            .env_remove("SUPSVC_VCENTER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::of(cmd).await
    }

    /// Every request vCenter answered, a line each (`METHOD path -> status`).
    pub fn lines(&self) -> Vec<String> {
        self.vc.requests().iter().map(|r| r.line()).collect()
    }
}
