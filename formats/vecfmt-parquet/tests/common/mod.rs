//! What the tests of this crate share beyond the test kit: where the fixtures are, and the
//! kit's drain in the shape they use.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vecfmt::stream::MatrixSource;
use vecfmt::Scalar;

/// `testdata/interop/parquet` in the repository.
#[allow(dead_code, reason = "not every test binary reads the fixtures")]
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/interop/parquet")
}

/// Entries by (row, col).
pub type Entries = BTreeMap<(u64, u64), Scalar>;

/// Every entry of a source, duplicates summed, sorted by (row, col); and whether the source
/// gave row blocks. The kit's drain, which checks every block against the stream contract.
pub fn drain(src: &mut dyn MatrixSource) -> vecfmt::Result<(Entries, bool)> {
    vecfmt_testkit::drain(src).map(|d| (d.map(), d.rows_mode))
}
