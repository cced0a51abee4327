//! `krew/release.sh` builds one archive per platform krew lists (linux, darwin, windows; amd64 and
//! arm64) and a manifest whose digests are those archives'. The archives are built once, with the
//! script's `release-check` profile (the release pipeline without the optimiser: see Cargo.toml), and
//! each binary is run where this machine can: natively, under qemu-user (linux/arm64) and under wine
//! (windows/amd64); macOS binaries are checked as Mach-O for their architecture, loading nothing a
//! Mac does not have.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use object::macho;
use object::read::elf::ProgramHeader as _;
use object::read::macho::MachHeader as _;
use object::{Architecture, Object, elf};
use serde_json::Value;
use sha2::{Digest, Sha256};
use supsvc_tests::KREW_PLATFORMS as PLATFORMS;
use supsvc_tests::tools::ensure_tool;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The folder `krew/release.sh` wrote (built once per test process).
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"));
        let dist = target.join("release-check").join("dist");
        let output = Command::new("bash")
            .arg(root().join("krew/release.sh"))
            .env("SUPSVC_DIST", &dist)
            .env("SUPSVC_RELEASE_PROFILE", "release-check")
            .env_remove("SUPSVC_RELEASE_TARGETS")
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "krew/release.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        dist
    })
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(dist().join("supsvc.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn archive_name(target: &str) -> String {
    format!("kubectl-supsvc-v{VERSION}-{target}.tar.gz")
}

fn exe(os: &str) -> &'static str {
    if os == "windows" { ".exe" } else { "" }
}

/// The archive of `target` unpacked into a fresh folder.
fn unpacked(target: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(dist().join(archive_name(target)))
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "tar -xzf {}", archive_name(target));
    dir
}

fn stdout_of(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n")
}

#[test]
fn the_manifest_lists_every_platform_with_the_digest_of_its_archive() {
    let manifest = manifest();
    let spec = &manifest["spec"];
    assert_eq!(spec["version"], format!("v{VERSION}"));
    let platforms = spec["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), PLATFORMS.len());
    let sums = std::fs::read_to_string(dist().join("sha256sums.txt")).unwrap();
    for (os, arch, target) in PLATFORMS {
        let platform = platforms
            .iter()
            .find(|p| {
                p["selector"]["matchLabels"]["os"] == os
                    && p["selector"]["matchLabels"]["arch"] == arch
            })
            .unwrap_or_else(|| panic!("no platform for {os}/{arch}"));
        let name = archive_name(target);
        assert_eq!(
            platform["uri"],
            format!("https://github.com/supsvc/supsvc/releases/download/v{VERSION}/{name}")
        );
        let sha = hex::encode(Sha256::digest(std::fs::read(dist().join(&name)).unwrap()));
        assert_eq!(platform["sha256"], sha, "{os}/{arch}: the archive's digest");
        assert!(
            sums.lines().any(|l| l == format!("{sha}  {name}")),
            "sha256sums.txt lists {name}:\n{sums}"
        );
        assert_eq!(platform["bin"], format!("kubectl-supsvc{}", exe(os)));
    }
}

#[test]
fn each_archive_holds_the_plugin_its_completer_and_the_license() {
    let license = std::fs::read(root().join("LICENSE")).unwrap();
    for (os, _, target) in PLATFORMS {
        let dir = unpacked(target);
        let names: BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let x = exe(os);
        let wanted: BTreeSet<String> = [
            format!("kubectl-supsvc{x}"),
            format!("kubectl_complete-supsvc{x}"),
            "LICENSE".to_string(),
        ]
        .into();
        assert_eq!(names, wanted, "{target}");
        assert_eq!(std::fs::read(dir.path().join("LICENSE")).unwrap(), license);
    }
}

/// The dylibs a Mach-O executable loads (LC_LOAD_DYLIB and kin).
fn macho_dylibs(data: &[u8]) -> Vec<String> {
    let file = object::read::macho::MachOFile64::<object::Endianness>::parse(data).unwrap();
    let endian = file.endian();
    let mut dylibs = Vec::new();
    let mut commands = file.macho_load_commands().unwrap();
    while let Some(command) = commands.next().unwrap() {
        if let Some(dylib) = command.dylib().unwrap() {
            let name = command.string(endian, dylib.dylib.name).unwrap();
            dylibs.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    dylibs
}

#[test]
fn each_binary_is_built_for_its_platform() {
    for (os, arch, target) in PLATFORMS {
        let dir = unpacked(target);
        for bin in ["kubectl-supsvc", "kubectl_complete-supsvc"] {
            let path = dir.path().join(format!("{bin}{}", exe(os)));
            let data = std::fs::read(&path).unwrap();
            let file = object::File::parse(&*data).unwrap();
            let what = format!("{target}/{bin}");
            let architecture = match arch {
                "amd64" => Architecture::X86_64,
                _ => Architecture::Aarch64,
            };
            assert_eq!(file.architecture(), architecture, "{what}");
            assert!(file.is_64(), "{what}");
            match (os, &file) {
                ("linux", object::File::Elf64(elf_file)) => {
                    // Static: no program interpreter (ld.so) and no shared library to find.
                    let endian = elf_file.endian();
                    let interp = elf_file
                        .elf_program_headers()
                        .iter()
                        .any(|h| h.p_type(endian) == elf::PT_INTERP);
                    assert!(!interp, "{what} is statically linked");
                    assert!(file.imports().unwrap().is_empty(), "{what} imports nothing");
                }
                ("darwin", object::File::MachO64(_)) => {
                    let dylibs = macho_dylibs(&data);
                    // Only what every macOS has: libSystem, libiconv with its libcharset (Rust's
                    // std links -liconv; macOS ships both in /usr/lib) and two system frameworks
                    // (linked through krew/macos-frameworks' stubs, with the frameworks' real
                    // install names).
                    for dylib in &dylibs {
                        assert!(
                            [
                                "/usr/lib/libSystem.B.dylib",
                                "/usr/lib/libiconv.2.dylib",
                                "/usr/lib/libcharset.1.dylib",
                                "/System/Library/Frameworks/Security.framework/Versions/A/Security",
                                "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation",
                            ]
                            .contains(&dylib.as_str()),
                            "{what} loads {dylib}: {dylibs:?}"
                        );
                    }
                    assert!(dylibs.iter().any(|d| d.starts_with("/usr/lib/libSystem")));
                    let filetype = match &file {
                        object::File::MachO64(m) => m.macho_header().filetype(m.endian()),
                        _ => unreachable!(),
                    };
                    assert_eq!(filetype, macho::MH_EXECUTE, "{what} is an executable");
                }
                ("windows", object::File::Pe64(_)) => {
                    // No MinGW runtime DLL (libgcc_s, libwinpthread) a Windows laptop lacks.
                    let dlls: BTreeSet<String> = file
                        .imports()
                        .unwrap()
                        .iter()
                        .map(|i| String::from_utf8_lossy(i.library()).to_ascii_lowercase())
                        .collect();
                    assert!(
                        dlls.iter().all(|d| !d.starts_with("lib")),
                        "{what} imports {dlls:?}"
                    );
                    assert!(dlls.contains("kernel32.dll"), "{what}: {dlls:?}");
                }
                (os, _) => panic!(
                    "{what}: not the executable format of {os}: {:?}",
                    file.format()
                ),
            }
        }
    }
}

/// `--version`, `--help` and (with `complete`) a completion through the completer, run with `runner`
/// (empty: natively) and `env`; `extra` files are put beside the binaries first.
fn runs(target: &str, runner: &[&Path], env: &[(&str, &Path)], extra: &[&Path], complete: bool) {
    let dir = unpacked(target);
    for file in extra {
        std::fs::copy(file, dir.path().join(file.file_name().unwrap())).unwrap();
    }
    let x = if target.contains("windows") {
        ".exe"
    } else {
        ""
    };
    let run = |bin: &str, args: &[&str]| {
        let program = dir.path().join(format!("{bin}{x}"));
        let mut cmd = match runner.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(&program);
                cmd
            }
            None => Command::new(&program),
        };
        cmd.args(args).env_remove("KUBECONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd.output().unwrap();
        stdout_of(&output, &format!("{target}: {bin} {args:?}"))
    };
    let version = run("kubectl-supsvc", &["--version"]);
    assert_eq!(
        version.trim(),
        format!("kubectl-supsvc {VERSION}"),
        "{target}"
    );
    let help = run("kubectl-supsvc", &["--help"]);
    assert!(help.contains("Usage: kubectl supsvc"), "{target}: {help}");
    if !complete {
        return;
    }
    // The completer finds the plugin beside it (with its .exe on Windows) and hands it the words.
    let completion = run("kubectl_complete-supsvc", &["diag"]);
    let lines: Vec<&str> = completion.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("diagnose")),
        "{target}: {completion}"
    );
    assert!(
        lines.last().unwrap().starts_with(':'),
        "cobra's directive line ends the answer: {completion}"
    );
}

#[test]
fn the_linux_amd64_binaries_run_here() {
    runs(PLATFORMS[0].2, &[], &[], &[], true);
}

#[test]
fn the_linux_arm64_binaries_run_under_qemu_user() {
    let qemu = ensure_tool("qemu-aarch64", "qemu-user");
    // Not the completer: it execs the plugin, which the kernel cannot run without qemu registered
    // with binfmt_misc (not in a container); the amd64 and Windows runs check the completer.
    runs(PLATFORMS[1].2, &[&qemu], &[], &[], false);
}

#[test]
fn the_windows_binaries_run_under_wine() {
    // Debian's wine64 package puts the loader in /usr/lib/wine (the `wine` wrapper comes with the
    // 32-bit half, which a 64-bit program does not need).
    let wine = ensure_tool("/usr/lib/wine/wine64", "wine64");
    let prefix = tempfile::tempdir().unwrap();
    // Wine 8 lacks bcryptprimitives.dll (Windows 10+ has it): build tests/wine's stand-in with the
    // release's zig (krew/release.sh installed it) and put it beside the .exe.
    dist();
    let shim = prefix.path().join("bcryptprimitives.dll");
    let status = Command::new("python3")
        .args([
            "-m",
            "ziglang",
            "cc",
            "-target",
            "x86_64-windows-gnu",
            "-shared",
            "-o",
        ])
        .arg(&shim)
        .arg(root().join("tests/wine/bcryptprimitives.c"))
        .arg("-ladvapi32")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "zig cc builds the bcryptprimitives.dll stand-in"
    );
    runs(
        PLATFORMS[4].2,
        &[&wine],
        &[
            ("WINEPREFIX", prefix.path()),
            ("WINEDEBUG", Path::new("-all")),
        ],
        &[&shim],
        true,
    );
}
