//! Debian's cloud kernels, fetched with `apt-get download` and cached: only the vmlinuz is
//! kept (the cloud configs build in all the guest needs: BTF, BPF, syscall tracepoints,
//! tracefs, devtmpfs, the 8250 console), so no modules go into the initramfs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::util::{check, output};

const PREFIX: &str = "linux-image-";
/// Unsigned: the same kernels as the signed ones, without the shim machinery.
const SUFFIX: &str = "-cloud-amd64-unsigned";

pub(super) struct Kernel {
    /// `6.1.0-56-cloud-amd64`, as `uname -r` shows it in the guest.
    pub release: String,
    pub vmlinuz: PathBuf,
}

/// The newest cloud kernel matching `spec` (`6.1`, `6.12`, `6.1.0-56`, `6.12.117`), from
/// the cache when it is already there.
pub(super) fn fetch(cache: &Path, spec: &str) -> anyhow::Result<Kernel> {
    let mut names = candidates(spec);
    if names.is_empty() {
        // A fresh machine may have no package lists yet.
        let _ = check(Command::new("apt-get").args(["update", "-qq"]));
        names = candidates(spec);
    }
    let release = match names.last() {
        Some(n) => release_of(n),
        // Offline: the newest matching kernel already cached.
        None => match cached(cache, spec).pop() {
            Some(r) => {
                eprintln!("xtask: no {PREFIX}{spec}*{SUFFIX} in apt; using the cached {r}");
                r
            }
            None => bail!(
                "no package {PREFIX}{spec}*{SUFFIX} in apt (bookworm main and bookworm-security have 6.1 and 6.12)"
            ),
        },
    };
    let vmlinuz = cache.join(format!("vmlinuz-{release}"));
    if !vmlinuz.exists() {
        download(cache, &release, &vmlinuz)?;
    }
    Ok(Kernel { release, vmlinuz })
}

/// Does `name` continue `spec` at a version boundary (so `6.1` is not `6.12`)?
fn matches(rest_after_spec: &str) -> bool {
    rest_after_spec.is_empty() || rest_after_spec.starts_with(['.', '-', '+'])
}

/// Matching package names, oldest first.
fn candidates(spec: &str) -> Vec<String> {
    let prefix = format!("{PREFIX}{spec}");
    let mut v: Vec<String> = output("apt-cache", &["pkgnames", &prefix])
        .lines()
        .filter(|n| {
            n.len() >= prefix.len() + SUFFIX.len()
                && n.ends_with(SUFFIX)
                && matches(&n[prefix.len()..n.len() - SUFFIX.len()])
        })
        .map(str::to_string)
        .collect();
    v.sort_by_key(|n| version_key(n));
    v
}

fn cached(cache: &Path, spec: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("vmlinuz-").map(str::to_string))
        .filter(|r| r.strip_prefix(spec).is_some_and(matches))
        .collect();
    v.sort_by_key(|r| version_key(r));
    v
}

fn release_of(package: &str) -> String {
    package.trim_start_matches(PREFIX).trim_end_matches("-unsigned").to_string()
}

/// The numbers in a name, in order: `6.1.0-56` < `6.1.0-100`, as a string sort would not.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
}

fn download(cache: &Path, release: &str, vmlinuz: &Path) -> anyhow::Result<()> {
    let package = format!("{PREFIX}{release}-unsigned");
    let work = cache.join(format!("dl-{release}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    eprintln!("xtask: downloading {package}");
    // As root, apt's download sandbox user (_apt) could not write here; it only warns.
    check(
        Command::new("apt-get").args(["download", "-qq", "-o", "APT::Sandbox::User=root", &package]).current_dir(&work),
    )?;
    let deb = std::fs::read_dir(&work)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", work.display()))?;
    let root = work.join("root");
    check(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    let boot = root.join("boot");
    let tmp = vmlinuz.with_extension("part");
    std::fs::copy(boot.join(format!("vmlinuz-{release}")), &tmp)
        .with_context(|| format!("no vmlinuz-{release} in {package}"))?;
    // The config documents what the guest kernel has built in.
    let _ = std::fs::copy(boot.join(format!("config-{release}")), cache.join(format!("config-{release}")));
    std::fs::rename(&tmp, vmlinuz)?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically_and_specs_stop_at_boundaries() {
        let mut v = vec!["6.1.0-56-cloud-amd64", "6.1.0-100-cloud-amd64", "6.1.0-9-cloud-amd64"];
        v.sort_by_key(|n| version_key(n));
        assert_eq!(v, ["6.1.0-9-cloud-amd64", "6.1.0-56-cloud-amd64", "6.1.0-100-cloud-amd64"]);
        assert!(matches(".0-56"));
        assert!(matches("+deb12"));
        assert!(!matches("2.117+deb12"));
        assert_eq!(release_of("linux-image-6.12.117+deb12-cloud-amd64-unsigned"), "6.12.117+deb12-cloud-amd64");
    }
}
