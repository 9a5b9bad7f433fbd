//! The output files of a run, and the checksum that says whether two runs computed the same
//! aggregates.

use std::path::{Path, PathBuf};

use crate::{context, BenchError};

/// FNV-1a's 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a's 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Where one engine writes its aggregates.
pub(crate) struct Outputs {
    pub(crate) carriers: PathBuf,
    pub(crate) origins: PathBuf,
    pub(crate) routes: PathBuf,
    pub(crate) top_routes: PathBuf,
}

impl Outputs {
    /// The files under `dir`, which is created (and emptied of earlier outputs).
    pub(crate) fn under(dir: &Path) -> Result<Self, BenchError> {
        let outputs = Self {
            carriers: dir.join("carriers.csv"),
            origins: dir.join("origins.csv"),
            routes: dir.join("routes.csv"),
            top_routes: dir.join("top_routes.jsonl"),
        };
        std::fs::create_dir_all(dir)
            .map_err(context(format!("cannot create {}", dir.display())))?;
        for path in outputs.paths() {
            if path.exists() {
                std::fs::remove_file(path)
                    .map_err(context(format!("cannot remove {}", path.display())))?;
            }
        }
        Ok(outputs)
    }

    fn paths(&self) -> [&Path; 4] {
        [
            &self.carriers,
            &self.origins,
            &self.routes,
            &self.top_routes,
        ]
    }

    /// An FNV-1a hash of every output file's bytes, in a fixed order, as 16 hex digits: two
    /// runs with equal checksums wrote the same aggregates, byte for byte.
    pub(crate) fn checksum(&self) -> Result<String, BenchError> {
        let mut hash = FNV_OFFSET;
        for path in self.paths() {
            let bytes =
                std::fs::read(path).map_err(context(format!("cannot read {}", path.display())))?;
            // The length separates the files, so bytes moving between two of them change it.
            for byte in (bytes.len() as u64).to_le_bytes().iter().chain(&bytes) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(FNV_PRIME);
            }
        }
        Ok(format!("{hash:016x}"))
    }
}
