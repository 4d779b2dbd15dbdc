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

/// The environment variable that turns the prefetch on or off.
pub const ENV: &str = "HEARTH_PREFETCH";

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Whether the kernels ask for the next record ahead of use.
pub fn enabled() -> bool {
    *ENABLED.get_or_init(|| match std::env::var(ENV).as_deref() {
        Ok("on" | "1") => true,
        Ok("off" | "0") => false,
        _ => default_for_this_cpu(),
    })
}

/// On, except on AMD (and Hygon) CPUs.
fn default_for_this_cpu() -> bool {
    !matches!(cpu_vendor().as_str(), "AuthenticAMD" | "HygonGenuine")
}

/// The CPUID vendor string ("GenuineIntel", "AuthenticAMD", ...); empty off x86-64.
pub fn cpu_vendor() -> String {
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
    fn the_vendor_is_read_and_the_choice_is_stable() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(cpu_vendor().len(), 12, "{:?}", cpu_vendor());
        assert_eq!(enabled(), enabled());
    }
}
