//! The few HDF5 calls the `hdf5` crate does not wrap in a dynamically typed way: the class
//! and size of a stored datatype, fixed-length strings of any size (PyTables and pandas
//! write those), the filter pipeline with the names the file stores, and scalar string
//! attributes in the form PyTables writes them.
//!
//! Every call runs under the `hdf5` crate's library lock (`hdf5::sync::sync`), which also
//! initialises the library (and so registers the blosc filter) on first use.

use std::ffi::{c_char, c_uint, CString};

use hdf5::{Container, Dataset, Location};
use hdf5_sys::h5::herr_t;
use hdf5_sys::h5a::{H5Aclose, H5Acreate2, H5Aget_type, H5Aread, H5Awrite};
use hdf5_sys::h5d::{H5Dget_create_plist, H5Dget_space, H5Dget_type, H5Dread};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{H5Pclose, H5Pget_filter2, H5Pget_nfilters, H5P_DEFAULT};
use hdf5_sys::h5s::{H5S_class_t, H5S_seloper_t, H5Sclose, H5Screate, H5Screate_simple, H5Sselect_hyperslab, H5S_ALL};
use hdf5_sys::h5t::{
    H5T_class_t, H5T_cset_t, H5T_norm_t, H5T_order_t, H5T_sign_t, H5T_str_t, H5Tclose, H5Tcopy, H5Tget_class,
    H5Tget_cset, H5Tget_ebias, H5Tget_fields, H5Tget_member_value, H5Tget_nmembers, H5Tget_norm, H5Tget_offset,
    H5Tget_order, H5Tget_precision, H5Tget_sign, H5Tget_size, H5Tget_strpad, H5Tis_variable_str, H5Tset_cset,
    H5Tset_size, H5Tset_strpad, H5T_C_S1,
};
use hdf5_sys::h5z::H5Zfilter_avail;

use crate::StringsProblem;

/// What a stored datatype is, as far as vecfmt cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeClass {
    /// A signed integer of this many bytes.
    Int(usize),
    /// An unsigned integer of this many bytes.
    Uint(usize),
    /// An IEEE float of this many bytes.
    Float(usize),
    /// A fixed-length string of this many bytes.
    FixedString(usize),
    /// A variable-length string.
    VarString,
    /// A bool: a 1-byte enum whose two members are 0 and 1 (h5py stores numpy bool as the
    /// enum of int8 `{FALSE: 0, TRUE: 1}`), or an 8-bit bitfield (PyTables' bool).
    Bool,
    /// Anything else (compound, other enums, array, reference, ...), by HDF5 class name.
    Other(&'static str),
}

impl TypeClass {
    /// A short numpy-like name for messages.
    pub(crate) fn describe(self) -> String {
        match self {
            TypeClass::Int(n) => format!("int{}", n * 8),
            TypeClass::Uint(n) => format!("uint{}", n * 8),
            TypeClass::Float(n) => format!("float{}", n * 8),
            TypeClass::FixedString(n) => format!("fixed-length string (S{n})"),
            TypeClass::VarString => "variable-length string".into(),
            TypeClass::Bool => "bool".into(),
            TypeClass::Other(c) => c.into(),
        }
    }
    /// Whether the type is a string of either kind.
    pub(crate) fn is_string(self) -> bool {
        matches!(self, TypeClass::FixedString(_) | TypeClass::VarString)
    }
}

/// A type id we own and close on drop.
struct TypeId(hid_t);

impl Drop for TypeId {
    fn drop(&mut self) {
        if self.0 >= 0 {
            hdf5::sync::sync(|| {
                // SAFETY: the id came from H5Dget_type/H5Aget_type/H5Tcopy and is closed once.
                unsafe { H5Tclose(self.0) };
            });
        }
    }
}

fn classify(tid: hid_t) -> TypeClass {
    hdf5::sync::sync(|| {
        // SAFETY: `tid` is a valid open datatype id for the duration of the call.
        unsafe {
            let size = H5Tget_size(tid);
            match H5Tget_class(tid) {
                H5T_class_t::H5T_INTEGER => match H5Tget_sign(tid) {
                    H5T_sign_t::H5T_SGN_NONE => TypeClass::Uint(size),
                    _ => TypeClass::Int(size),
                },
                H5T_class_t::H5T_FLOAT if ieee_float(tid, size) => TypeClass::Float(size),
                H5T_class_t::H5T_FLOAT => TypeClass::Other("float type with a non-IEEE bit layout"),
                H5T_class_t::H5T_STRING => {
                    if H5Tis_variable_str(tid) > 0 {
                        TypeClass::VarString
                    } else {
                        TypeClass::FixedString(size)
                    }
                }
                H5T_class_t::H5T_COMPOUND => TypeClass::Other("compound (structured) type"),
                H5T_class_t::H5T_ENUM if size == 1 && bool_enum(tid) => TypeClass::Bool,
                H5T_class_t::H5T_ENUM => TypeClass::Other("enum type (other than a bool's 0/1)"),
                H5T_class_t::H5T_BITFIELD if size == 1 => TypeClass::Bool,
                H5T_class_t::H5T_ARRAY => TypeClass::Other("array type"),
                H5T_class_t::H5T_VLEN => TypeClass::Other("variable-length sequence type"),
                H5T_class_t::H5T_REFERENCE => TypeClass::Other("reference type"),
                H5T_class_t::H5T_OPAQUE => TypeClass::Other("opaque type"),
                H5T_class_t::H5T_BITFIELD => TypeClass::Other("bitfield type"),
                H5T_class_t::H5T_TIME => TypeClass::Other("time type"),
                _ => TypeClass::Other("unknown type"),
            }
        }
    })
}

/// Whether a 1-byte enum type has exactly two members, valued 0 and 1 (their names do not
/// matter: h5py writes `FALSE`/`TRUE`).
///
/// # Safety
/// `tid` must be a valid open enum datatype id of size 1, and the caller must hold the
/// library lock.
unsafe fn bool_enum(tid: hid_t) -> bool {
    // SAFETY: the caller guarantees `tid`.
    if unsafe { H5Tget_nmembers(tid) } != 2 {
        return false;
    }
    let mut values = [0u8; 2];
    for (k, v) in values.iter_mut().enumerate() {
        // SAFETY: a member value of a 1-byte enum is 1 byte, written into `v`.
        if unsafe { H5Tget_member_value(tid, k as c_uint, (v as *mut u8).cast()) } < 0 {
            return false;
        }
    }
    values.sort_unstable();
    values == [0, 1]
}

/// Reads the 1-byte elements `start .. start + count` (one range per dimension) of a dataset
/// of a 1-byte type as they are stored, without conversion: the memory type is a copy of the
/// file type. Row-major.
pub(crate) fn read_bytes(ds: &Dataset, start: &[u64], count: &[u64]) -> hdf5::Result<Vec<u8>> {
    let n = count
        .iter()
        .try_fold(1usize, |a, &c| a.checked_mul(usize::try_from(c).ok()?))
        .ok_or_else(|| hdf5::Error::from("selection too large"))?;
    if start.len() != count.len() || count.len() != ds.ndim() {
        return Err("selection rank differs from the dataset's".into());
    }
    let mut buf = vec![0u8; n];
    if n == 0 {
        return Ok(buf);
    }
    let rc = hdf5::sync::sync(|| {
        // SAFETY: every id is checked and closed here (TypeId/Space guards); the selection
        // has the dataset's rank (checked above) and selects `n` elements, the size of the
        // memory space; the memory type is the file type copied, whose size is 1 (checked),
        // so H5Dread writes exactly `n` bytes into `buf`.
        unsafe {
            let ftype = TypeId(H5Dget_type(ds.id()));
            if ftype.0 < 0 || H5Tget_size(ftype.0) != 1 {
                return -1;
            }
            let mtype = TypeId(H5Tcopy(ftype.0));
            let fspace = Space(H5Dget_space(ds.id()));
            if mtype.0 < 0 || fspace.0 < 0 {
                return -1;
            }
            if H5Sselect_hyperslab(
                fspace.0,
                H5S_seloper_t::H5S_SELECT_SET,
                start.as_ptr(),
                std::ptr::null(),
                count.as_ptr(),
                std::ptr::null(),
            ) < 0
            {
                return -1;
            }
            let mspace = Space(H5Screate_simple(count.len() as i32, count.as_ptr(), std::ptr::null()));
            if mspace.0 < 0 {
                return -1;
            }
            H5Dread(
                ds.id(),
                mtype.0,
                mspace.0,
                fspace.0,
                H5P_DEFAULT,
                buf.as_mut_ptr().cast(),
            )
        }
    });
    if rc < 0 {
        return Err(hdf5::Error::query().unwrap_or_else(|_| "HDF5 could not read the bool values".into()));
    }
    Ok(buf)
}

/// A dataspace id we own and close on drop.
struct Space(hid_t);

impl Drop for Space {
    fn drop(&mut self) {
        if self.0 >= 0 {
            hdf5::sync::sync(|| {
                // SAFETY: the id came from H5Dget_space/H5Screate_simple and is closed once.
                unsafe { H5Sclose(self.0) };
            });
        }
    }
}

/// Whether a float type has the bit layout of IEEE binary16, binary32 or binary64 (either
/// byte order). A malformed file can describe any sign, exponent and mantissa positions, and
/// HDF5's conversion of such a type trips an assertion or reads past its bits: found by the
/// hostile-input suite (a flipped bit in a datatype message aborted the process).
///
/// # Safety
/// `tid` must be a valid open datatype id, and the caller must hold the library lock.
unsafe fn ieee_float(tid: hid_t, size: usize) -> bool {
    let (mut spos, mut epos, mut esize, mut mpos, mut msize) = (0usize, 0usize, 0usize, 0usize, 0usize);
    // SAFETY: the caller guarantees `tid`; the out-pointers are to locals that live across
    // the call.
    let fields = unsafe { H5Tget_fields(tid, &mut spos, &mut epos, &mut esize, &mut mpos, &mut msize) };
    if fields < 0 {
        return false;
    }
    // SAFETY: as above.
    let (precision, offset, ebias, norm, order) = unsafe {
        (
            H5Tget_precision(tid),
            H5Tget_offset(tid),
            H5Tget_ebias(tid),
            H5Tget_norm(tid),
            H5Tget_order(tid),
        )
    };
    let want = match size {
        2 => (16, 15, 10, 5, 10, 15),
        4 => (32, 31, 23, 8, 23, 127),
        8 => (64, 63, 52, 11, 52, 1023),
        _ => return false,
    };
    (precision, spos, epos, esize, msize, ebias) == want
        && offset == 0
        && mpos == 0
        && norm == H5T_norm_t::H5T_NORM_IMPLIED
        && matches!(order, H5T_order_t::H5T_ORDER_LE | H5T_order_t::H5T_ORDER_BE)
}

/// The class of a dataset's stored type.
pub(crate) fn dataset_type(ds: &Dataset) -> TypeClass {
    // SAFETY: the dataset id is valid while `ds` lives; the returned type id is owned.
    let tid = TypeId(hdf5::sync::sync(|| unsafe { H5Dget_type(ds.id()) }));
    if tid.0 < 0 {
        return TypeClass::Other("unreadable type");
    }
    classify(tid.0)
}

/// The class of an attribute's stored type.
pub(crate) fn attr_type(attr: &hdf5::Attribute) -> TypeClass {
    // SAFETY: the attribute id is valid while `attr` lives; the returned type id is owned.
    let tid = TypeId(hdf5::sync::sync(|| unsafe { H5Aget_type(attr.id()) }));
    if tid.0 < 0 {
        return TypeClass::Other("unreadable type");
    }
    classify(tid.0)
}

/// Splits `n` fixed-length strings of `size` bytes, dropping the padding.
fn split_fixed(buf: &[u8], size: usize, pad: H5T_str_t) -> Vec<Vec<u8>> {
    buf.chunks(size.max(1))
        .map(|s| {
            let s = match pad {
                // NULLTERM and NULLPAD: the string ends at the first NUL.
                H5T_str_t::H5T_STR_SPACEPAD => {
                    let end = s.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
                    &s[..end]
                }
                _ => &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())],
            };
            s.to_vec()
        })
        .collect()
}

/// Reads all fixed-length strings of a container (dataset or attribute) as byte strings.
fn read_fixed(obj: &Container, is_attr: bool, n: usize) -> Result<Vec<Vec<u8>>, StringsProblem> {
    hdf5::sync::sync(|| {
        // SAFETY: the ids are valid while `obj` lives; the memory type is a copy of the
        // file type (same size, so no conversion), and `buf` holds exactly `n` elements of
        // that size, which is what H5Dread/H5Aread write for the whole dataspace.
        unsafe {
            let ftype = TypeId(if is_attr {
                H5Aget_type(obj.id())
            } else {
                H5Dget_type(obj.id())
            });
            if ftype.0 < 0 {
                return Err(StringsProblem::Hdf5(last_error("cannot read the string type")));
            }
            let size = H5Tget_size(ftype.0);
            let pad = H5Tget_strpad(ftype.0);
            let mtype = TypeId(H5Tcopy(ftype.0));
            let len = n.checked_mul(size).ok_or(StringsProblem::TooLarge)?;
            let mut buf = vec![0u8; len];
            let rc: herr_t = if is_attr {
                H5Aread(obj.id(), mtype.0, buf.as_mut_ptr().cast())
            } else {
                H5Dread(
                    obj.id(),
                    mtype.0,
                    H5S_ALL,
                    H5S_ALL,
                    H5P_DEFAULT,
                    buf.as_mut_ptr().cast(),
                )
            };
            if rc < 0 {
                return Err(StringsProblem::Hdf5(last_error("HDF5 could not read the strings")));
            }
            Ok(split_fixed(&buf, size, pad))
        }
    })
}

fn utf8(bytes: Vec<u8>) -> Result<String, StringsProblem> {
    String::from_utf8(bytes).map_err(StringsProblem::NotUtf8)
}

/// The HDF5 library's error stack after a failed call, or `what` when there is none.
fn last_error(what: &str) -> hdf5::Error {
    hdf5::Error::query().unwrap_or_else(|_| what.into())
}

/// Reads every string of a 1-D (or scalar) string dataset or attribute: fixed or variable
/// length, ASCII or UTF-8.
pub(crate) fn read_strings(obj: &Container, is_attr: bool) -> Result<Vec<String>, StringsProblem> {
    let tid = TypeId(hdf5::sync::sync(|| {
        // SAFETY: the id is valid while `obj` lives; the returned type id is owned.
        unsafe {
            if is_attr {
                H5Aget_type(obj.id())
            } else {
                H5Dget_type(obj.id())
            }
        }
    }));
    let class = classify(tid.0);
    let n = obj.size();
    match class {
        TypeClass::FixedString(_) => read_fixed(obj, is_attr, n)?.into_iter().map(utf8).collect(),
        TypeClass::VarString => {
            let utf8_cset = hdf5::sync::sync(|| {
                // SAFETY: valid ids while `obj` lives; the type id is owned and closed.
                unsafe {
                    let t = TypeId(if is_attr {
                        H5Aget_type(obj.id())
                    } else {
                        H5Dget_type(obj.id())
                    });
                    H5Tget_cset(t.0) == H5T_cset_t::H5T_CSET_UTF8
                }
            });
            if utf8_cset {
                let v: Vec<hdf5::types::VarLenUnicode> = obj.read_raw().map_err(StringsProblem::Hdf5)?;
                Ok(v.into_iter().map(|s| s.as_str().to_owned()).collect())
            } else {
                let v: Vec<hdf5::types::VarLenAscii> = obj.read_raw().map_err(StringsProblem::Hdf5)?;
                v.into_iter().map(|s| utf8(s.as_bytes().to_vec())).collect()
            }
        }
        other => Err(StringsProblem::NotStrings {
            stored: other.describe(),
        }),
    }
}

/// Reads an attribute as one string, when it is a string.
pub(crate) fn attr_string(loc: &Location, name: &str) -> Option<String> {
    let attr = loc.attr(name).ok()?;
    if !attr_type(&attr).is_string() {
        return None;
    }
    let mut v = read_strings(&attr, true).ok()?;
    if v.len() == 1 {
        v.pop()
    } else {
        None
    }
}

/// Reads an integer attribute (scalar or 1-D) as i64 values.
pub(crate) fn attr_ints(loc: &Location, name: &str) -> Option<Vec<i64>> {
    let attr = loc.attr(name).ok()?;
    match attr_type(&attr) {
        TypeClass::Int(_) | TypeClass::Uint(_) => attr.read_raw::<i64>().ok(),
        _ => None,
    }
}

/// One filter of a dataset's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterInfo {
    pub id: i32,
    /// The name stored in the file (plugins often store a URL with it).
    pub name: String,
    /// Whether this build of HDF5 has the filter.
    pub available: bool,
}

/// The well-known names of filter ids, for messages.
pub(crate) fn filter_name(id: i32) -> &'static str {
    match id {
        1 => "deflate (gzip)",
        2 => "shuffle",
        3 => "fletcher32",
        4 => "szip",
        5 => "nbit",
        6 => "scaleoffset",
        307 => "bzip2",
        32000 => "lzf",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32013 => "zfp",
        32015 => "zstd",
        32017 => "sz",
        32026 => "blosc2",
        _ => "an unregistered filter",
    }
}

/// The filter pipeline of a dataset.
pub(crate) fn filters(ds: &Dataset) -> Vec<FilterInfo> {
    hdf5::sync::sync(|| {
        // SAFETY: the dataset id is valid while `ds` lives; the property list is owned and
        // closed; `name` and `cd` are sized as passed.
        unsafe {
            let dcpl = H5Dget_create_plist(ds.id());
            if dcpl < 0 {
                return Vec::new();
            }
            let n = H5Pget_nfilters(dcpl).max(0) as c_uint;
            let mut out = Vec::new();
            for i in 0..n {
                let mut flags: c_uint = 0;
                let mut nelm: usize = 16;
                let mut cd = [0 as c_uint; 16];
                let mut name = [0 as c_char; 256];
                let mut config: c_uint = 0;
                let id = H5Pget_filter2(
                    dcpl,
                    i,
                    &mut flags,
                    &mut nelm,
                    cd.as_mut_ptr(),
                    name.len(),
                    name.as_mut_ptr(),
                    &mut config,
                );
                if id < 0 {
                    continue;
                }
                let bytes: Vec<u8> = name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
                out.push(FilterInfo {
                    id,
                    name: String::from_utf8_lossy(&bytes).into_owned(),
                    available: H5Zfilter_avail(id) > 0,
                });
            }
            H5Pclose(dcpl);
            out
        }
    })
}

/// Writes a scalar fixed-length UTF-8 string attribute, the way PyTables stores `CLASS`,
/// `VERSION`, `TITLE` and pandas its `str` attributes (PyTables reads UTF-8 ones back as
/// `str`, ASCII ones as `bytes`). An empty string is stored as one NUL byte.
pub(crate) fn write_fixed_attr(loc: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    let cname = CString::new(name).map_err(|_| hdf5::Error::from("attribute name with a NUL byte"))?;
    let bytes = value.as_bytes();
    hdf5::sync::sync(|| {
        // SAFETY: all ids are created here and closed before returning; the buffer holds
        // exactly `size` bytes, the size of the string type.
        unsafe {
            let size = bytes.len().max(1);
            let t = TypeId(H5Tcopy(*H5T_C_S1));
            if t.0 < 0 || H5Tset_size(t.0, size) < 0 {
                return Err(last_error("cannot make a string type"));
            }
            H5Tset_strpad(t.0, H5T_str_t::H5T_STR_NULLTERM);
            H5Tset_cset(t.0, H5T_cset_t::H5T_CSET_UTF8);
            let space = H5Screate(H5S_class_t::H5S_SCALAR);
            if space < 0 {
                return Err(last_error("cannot make a scalar dataspace"));
            }
            let attr = H5Acreate2(loc.id(), cname.as_ptr(), t.0, space, H5P_DEFAULT, H5P_DEFAULT);
            // Taken before the next call, which clears the library's error stack.
            let created = if attr < 0 {
                Err(last_error(&format!("cannot create attribute {name}")))
            } else {
                Ok(())
            };
            H5Sclose(space);
            created?;
            let mut buf = vec![0u8; size];
            buf[..bytes.len()].copy_from_slice(bytes);
            let rc = H5Awrite(attr, t.0, buf.as_ptr().cast());
            let written = if rc < 0 {
                Err(last_error(&format!("cannot write attribute {name}")))
            } else {
                Ok(())
            };
            H5Aclose(attr);
            written
        }
    })
}

/// Writes a 1-D fixed-length string dataset (numpy `S` array, as pandas stores an index
/// of strings): each string UTF-8 encoded, padded with NULs to the longest.
pub(crate) fn write_fixed_strings(group: &hdf5::Group, name: &str, values: &[String]) -> hdf5::Result<Dataset> {
    let size = values.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
    let mut buf = vec![0u8; size * values.len()];
    for (k, s) in values.iter().enumerate() {
        buf[k * size..k * size + s.len()].copy_from_slice(s.as_bytes());
    }
    let dt = hdf5::Datatype::from_descriptor(&hdf5::types::TypeDescriptor::FixedAscii(size))?;
    let ds = group
        .new_dataset_builder()
        .empty_as(&dt)
        .shape(values.len())
        .create(name)?;
    if values.is_empty() {
        return Ok(ds);
    }
    hdf5::sync::sync(|| {
        // SAFETY: the dataset and its type ids are valid; `buf` holds `values.len()`
        // elements of `size` bytes, the dataset's whole extent in its own type.
        unsafe {
            let rc = hdf5_sys::h5d::H5Dwrite(ds.id(), dt.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.as_ptr().cast());
            if rc < 0 {
                return Err(last_error(&format!("cannot write dataset {name}")));
            }
            Ok(())
        }
    })?;
    Ok(ds)
}

/// Whether an object exists at `path` inside `group` (without HDF5 printing anything).
pub(crate) fn exists(group: &hdf5::Group, path: &str) -> bool {
    group.link_exists(path)
}

/// The object kind at `name` in `group`.
pub(crate) fn is_group(group: &hdf5::Group, name: &str) -> bool {
    matches!(group.loc_type_by_name(name), Ok(hdf5::LocationType::Group))
}

/// Whether `name` in `group` is a dataset.
pub(crate) fn is_dataset(group: &hdf5::Group, name: &str) -> bool {
    matches!(group.loc_type_by_name(name), Ok(hdf5::LocationType::Dataset))
}
