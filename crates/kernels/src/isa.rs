//! The instruction set the kernels run on: the best one the CPU has, chosen once, or the one
//! `HEARTH_KERNELS` names.

use std::sync::OnceLock;

/// A kernel path. Every path gives the same bits as `Scalar` (see `dispatch`); they differ
/// only in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The portable reference (plain Rust, compiled for the build's baseline CPU).
    Scalar,
    /// 256-bit AVX2 with FMA and F16C: int8 dots by vpmaddubsw + vpmaddwd.
    Avx2,
    /// AVX2 plus AVX-VNNI (Intel Alder Lake and later, AMD Zen 5): vpdpbusd on 256 bits.
    Avx2Vnni,
    /// AVX-512 F/BW/VL with VNNI: 16 weight rows in one 512-bit register.
    Avx512,
}

/// Every path, slowest first.
pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx2Vnni, Isa::Avx512];

/// The environment variable that forces a path.
pub const ENV: &str = "HEARTH_KERNELS";

/// Why a requested path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsaError(pub String);

impl std::fmt::Display for IsaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IsaError {}

impl Isa {
    /// The name `HEARTH_KERNELS` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx2Vnni => "avx2-vnni",
            Isa::Avx512 => "avx512",
        }
    }

    /// The CPU features the path uses, as the startup log names them.
    pub fn features(self) -> &'static str {
        match self {
            Isa::Scalar => "portable",
            Isa::Avx2 => "avx2+fma+f16c",
            Isa::Avx2Vnni => "avx2+fma+f16c+avx-vnni",
            Isa::Avx512 => "avx512f+bw+vl+vnni",
        }
    }

    /// Parses a `HEARTH_KERNELS` value.
    pub fn parse(text: &str) -> Result<Isa, IsaError> {
        let wanted = text.trim().to_ascii_lowercase();
        ALL.into_iter().find(|isa| isa.name() == wanted).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|isa| isa.name()).collect();
            IsaError(format!("{ENV}={text:?} is not a kernel path; use one of {}", names.join(", ")))
        })
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma") && has!("f16c");
            match self {
                Isa::Scalar => true,
                Isa::Avx2 => avx2,
                Isa::Avx2Vnni => avx2 && has!("avxvnni"),
                Isa::Avx512 => avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Scalar
        }
    }

    /// The fastest path this CPU can run.
    pub fn best() -> Isa {
        ALL.into_iter().rev().find(|isa| isa.supported()).unwrap_or(Isa::Scalar)
    }

    /// Every path this CPU can run, slowest first (what the kernel tests compare).
    pub fn runnable() -> Vec<Isa> {
        ALL.into_iter().filter(|isa| isa.supported()).collect()
    }

    /// The path `HEARTH_KERNELS` asks for (the best one when unset or empty), or why it
    /// cannot be used here.
    pub fn from_env() -> Result<Isa, IsaError> {
        let requested = match std::env::var(ENV) {
            Ok(text) if !text.trim().is_empty() => Isa::parse(&text)?,
            _ => return Ok(Isa::best()),
        };
        if !requested.supported() {
            return Err(IsaError(format!(
                "{ENV}={} needs {}, which this CPU lacks (it can run: {})",
                requested.name(),
                requested.features(),
                Isa::runnable().iter().map(|isa| isa.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(requested)
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.features())
    }
}

static ACTIVE: OnceLock<Isa> = OnceLock::new();

/// Chooses the path for the process from `HEARTH_KERNELS` (first call wins) and returns it;
/// programs call this at startup so that a bad value is an error, not a silent fallback.
pub fn init() -> Result<Isa, IsaError> {
    if let Some(isa) = ACTIVE.get() {
        return Ok(*isa);
    }
    let isa = Isa::from_env()?;
    Ok(*ACTIVE.get_or_init(|| isa))
}

/// The path every kernel call of this process takes. Without an `init` call, an unusable
/// `HEARTH_KERNELS` falls back to the best path with a warning on stderr.
pub fn active() -> Isa {
    *ACTIVE.get_or_init(|| {
        Isa::from_env().unwrap_or_else(|e| {
            eprintln!("warning: {e}; using {}", Isa::best().name());
            Isa::best()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for isa in ALL {
            assert_eq!(Isa::parse(isa.name()), Ok(isa));
        }
        assert_eq!(Isa::parse(" AVX2 "), Ok(Isa::Avx2));
        let err = Isa::parse("sse9").unwrap_err().to_string();
        assert!(err.contains("sse9") && err.contains("avx2-vnni"), "{err}");
    }

    #[test]
    fn the_scalar_path_runs_everywhere_and_best_is_runnable() {
        assert!(Isa::Scalar.supported());
        assert!(Isa::best().supported());
        assert_eq!(Isa::runnable().first(), Some(&Isa::Scalar));
        assert_eq!(Isa::runnable().last(), Some(&Isa::best()));
    }
}
