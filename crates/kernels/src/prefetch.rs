//! Software prefetch of the next weight record by the interleaved kernels: on or off per CPU
//! vendor, chosen once per process (`HEARTH_PREFETCH=on|off` overrides it); results are the
//! same either way, only the speed differs.
//!
//! Measured, Qwen2.5-Coder-1.5B Q4_K_M, 2 threads, best-of-N alternations: on an Intel Xeon
//! (Sapphire Rapids) asking the L2 cache for the next record beat no prefetch on decode; on an
//! AMD EPYC (Zen 3) the same hints cost ~15-20% (tg64 16.5-18.5 tok/s without, 11.4-15.5 with;
//! pp256 87-92 without, 74-83 with), as its hardware prefetcher already streams the records
//! and the burst of hints competes with the demand loads.

use std::sync::OnceLock;

use crate::isa::IsaError;

/// The environment variable that turns the prefetch on or off.
pub const ENV: &str = "HEARTH_PREFETCH";

static ENABLED: OnceLock<bool> = OnceLock::new();

/// The choice for a `HEARTH_PREFETCH` value (unset or empty: the CPU vendor's default).
fn parse(value: Option<&str>, vendor: &str) -> Result<bool, IsaError> {
    match value.map(str::trim) {
        None | Some("") => Ok(!matches!(vendor, "AuthenticAMD" | "HygonGenuine")),
        Some("on" | "1") => Ok(true),
        Some("off" | "0") => Ok(false),
        Some(other) => Err(IsaError(format!("{ENV}={other} is neither `on` nor `off`"))),
    }
}

fn from_env() -> Result<bool, IsaError> {
    parse(std::env::var(ENV).ok().as_deref(), &cpu_vendor())
}

/// Fixes the choice for the process (first call wins) and returns it; programs call this at
/// startup so that a bad value is an error, as `isa::init` does for `HEARTH_KERNELS`.
pub fn init() -> Result<bool, IsaError> {
    if let Some(on) = ENABLED.get() {
        return Ok(*on);
    }
    let on = from_env()?;
    Ok(*ENABLED.get_or_init(|| on))
}

/// Whether the kernels ask for the next record ahead of use. Without an `init` call, a bad
/// `HEARTH_PREFETCH` falls back to the vendor's default with a warning on stderr.
pub fn enabled() -> bool {
    *ENABLED.get_or_init(|| {
        from_env().unwrap_or_else(|e| {
            eprintln!("warning: {e}; using this CPU's default");
            parse(None, &cpu_vendor()).unwrap_or(true)
        })
    })
}

/// The CPUID vendor string ("GenuineIntel", "AuthenticAMD", ...); empty off x86-64.
fn cpu_vendor() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let leaf = std::arch::x86_64::__cpuid(0);
        let bytes: Vec<u8> = [leaf.ebx, leaf.edx, leaf.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
    #[cfg(not(target_arch = "x86_64"))]
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_vendor_defaults_choose_and_bad_values_are_refused() {
        assert!(!parse(None, "AuthenticAMD").unwrap());
        assert!(!parse(Some(""), "HygonGenuine").unwrap());
        assert!(parse(None, "GenuineIntel").unwrap());
        assert!(parse(Some("on"), "AuthenticAMD").unwrap());
        assert!(!parse(Some(" off "), "GenuineIntel").unwrap());
        assert!(parse(Some("1"), "").unwrap());
        let err = parse(Some("yes"), "GenuineIntel").unwrap_err().to_string();
        assert!(err.contains("HEARTH_PREFETCH=yes"), "{err}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(cpu_vendor().len(), 12, "{:?}", cpu_vendor());
    }
}
