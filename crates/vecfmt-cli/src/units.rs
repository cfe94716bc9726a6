//! Sizes as users type them (`512M`, `4G`): parsed by the text-input library, which reads
//! `--checkpoint` with the same rules.

pub(crate) use vecfmt_text::parse_bytes;
