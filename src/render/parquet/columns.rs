//! Arrow arrays from fleetwatch's compact values: device ids as their canonical text, names
//! held as small integers as dictionaries, times as UTC microseconds.

use crate::model::DeviceId;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Int32Array, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_buffer::{Buffer, NullBuffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, TimeUnit};
use std::sync::Arc;

/// The type of a UTC timestamp in microseconds (`TIMESTAMP(MICROS, isAdjustedToUTC=true)`).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The type of a dictionary-encoded string.
pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

pub fn field(name: &str, t: DataType, nullable: bool) -> Field {
    Field::new(name, t, nullable)
}

/// Whether `names` names the model or firmware numbered `i`: it is in the list and not
/// empty (an empty name is none, written as null).
pub fn is_named<S: AsRef<str>>(names: &[S], i: usize) -> bool {
    names.get(i).is_some_and(|s| !s.as_ref().is_empty())
}

/// UTC microseconds gathered already.
pub fn timestamp_micros(us: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(us).with_timezone("UTC"))
}

/// Device ids (`None`: no device) as canonical hyphenated EUI-64 text, written into one
/// buffer of 23 bytes a device (no per-value builder calls or UTF-8 checks).
pub fn device_ids(ids: impl ExactSizeIterator<Item = Option<u64>>) -> ArrayRef {
    let n = ids.len();
    let mut values: Vec<u8> = Vec::with_capacity(n * 23);
    let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
    let mut nulls = NullBufferBuilder::new(n);
    offsets.push(0);
    for id in ids {
        match id {
            Some(d) => {
                values.extend_from_slice(&DeviceId(d).to_bytes());
                nulls.append_non_null();
            }
            None => nulls.append_null(),
        }
        offsets.push(values.len() as i32);
    }
    // Hex digits and hyphens: the one UTF-8 check over the whole buffer passes.
    Arc::new(StringArray::new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        nulls.finish(),
    ))
}

/// The metadata key that marks a batch's `UInt64` field as device ids the file holds as text
/// (`device_id_field`). It never reaches a file: `part_file::file_schema` makes the file's field
/// a plain `Utf8` one.
pub const IDS_AS_NUMBERS: &str = "fleetwatch.ids_as_numbers";

/// A batch's field of device ids given as numbers (`device_numbers`): the file's column is
/// their canonical text, written by `plain_strings::encode` without an Arrow string
/// array between (23 bytes a row built, copied and freed for nothing).
pub fn device_id_field(name: &str, nullable: bool) -> Field {
    let marker = [(IDS_AS_NUMBERS.to_string(), String::new())];
    let marker: std::collections::HashMap<String, String> = marker.into_iter().collect();
    Field::new(name, DataType::UInt64, nullable).with_metadata(marker)
}

/// Whether a batch's field holds device ids as numbers (`device_id_field`).
pub fn is_ids_as_numbers(field: &Field) -> bool {
    field.data_type() == &DataType::UInt64 && field.metadata().contains_key(IDS_AS_NUMBERS)
}

/// Device ids (`None`: no device) as numbers, for a `device_id_field`.
pub fn device_numbers(ids: impl ExactSizeIterator<Item = Option<u64>>) -> ArrayRef {
    let n = ids.len();
    let mut values: Vec<u64> = Vec::with_capacity(n);
    let mut nulls = NullBufferBuilder::new(n);
    for id in ids {
        values.push(id.unwrap_or(0));
        nulls.append(id.is_some());
    }
    device_numbers_of(values, nulls.finish())
}

/// Device ids as numbers gathered already, `nulls` marking the rows without one.
pub fn device_numbers_of(ids: Vec<u64>, nulls: Option<NullBuffer>) -> ArrayRef {
    Arc::new(UInt64Array::new(ScalarBuffer::from(ids), nulls))
}

/// Device ids given as numbers, as their text (what a reader of the file gets).
pub fn ids_as_text(numbers: &UInt64Array) -> ArrayRef {
    device_ids(numbers.iter())
}

/// A dictionary array: `keys` index `values` (`None` is null). Keys without a null (the
/// usual case: a first pass looks) go to `dictionary_of_keys`; otherwise they go straight
/// into their buffer and a null bitmap (not through a vector of options, twice the size,
/// copied again). A key out of range is an error; they are checked as they are written
/// (`DictionaryArray::try_new` read them all again: 1% of an export).
pub fn dictionary(
    keys: impl Iterator<Item = Option<i32>> + Clone,
    values: &[&str],
) -> Result<ArrayRef, arrow_schema::ArrowError> {
    if keys.clone().all(|k| k.is_some()) {
        return dictionary_of_keys(keys.map(|k| k.unwrap_or(0)).collect(), values);
    }
    let (n, _) = keys.size_hint();
    let mut k: Vec<i32> = Vec::with_capacity(n);
    let mut nulls = NullBufferBuilder::new(n);
    // Any key out of `0..values.len()`, as an unsigned number, is at least `values.len()`.
    let (mut largest, mut present) = (0u32, 0usize);
    for key in keys {
        match key {
            Some(v) => {
                k.push(v);
                largest = largest.max(v as u32);
                present += 1;
                nulls.append_non_null();
            }
            None => {
                k.push(0);
                nulls.append_null();
            }
        }
    }
    let keys = Int32Array::new(ScalarBuffer::from(k), nulls.finish());
    checked_dictionary(keys, (present > 0).then_some(largest), values)
}

/// A dictionary array without nulls: `keys` index `values`. The keys are checked in one pass
/// over the vector (a key out of range is an error) and kept as they are, without the null
/// bookkeeping a row of `dictionary` costs.
pub fn dictionary_of_keys(
    keys: Vec<i32>,
    values: &[&str],
) -> Result<ArrayRef, arrow_schema::ArrowError> {
    let largest = largest_key(&keys);
    let present = !keys.is_empty();
    let keys = Int32Array::new(ScalarBuffer::from(keys), None);
    checked_dictionary(keys, present.then_some(largest), values)
}

/// The largest of `keys` as unsigned numbers (0 for none): keys out of `0..values.len()`,
/// negative ones included, are at least `values.len()`. Every file's every key column goes
/// through this; with the baseline instruction set it took a compare and a move a key (1% of
/// an export), with AVX2, where the processor has it, an instruction takes eight.
fn largest_key(keys: &[i32]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { largest_key_avx2(keys) };
    }
    largest_key_plain(keys)
}

#[inline(always)]
fn largest_key_plain(keys: &[i32]) -> u32 {
    keys.iter().fold(0u32, |m, &k| m.max(k as u32))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn largest_key_avx2(keys: &[i32]) -> u32 {
    largest_key_plain(keys)
}

/// A dictionary array of keys gathered already, `nulls` marking the null ones (whose keys
/// are not looked at). A key not null out of range is an error.
pub fn dictionary_with_nulls(
    keys: Vec<i32>,
    nulls: Option<NullBuffer>,
    values: &[&str],
) -> Result<ArrayRef, arrow_schema::ArrowError> {
    let Some(nulls) = nulls else {
        return dictionary_of_keys(keys, values);
    };
    // The gathers write 0 under a null, so the largest of all the keys is nearly always in
    // range, and one plain pass over them settles it; the nulls' bitmap, a bit a row, is
    // read only when it is not.
    let any = largest_key(&keys);
    let largest = match (any as usize) < values.len() {
        true => Some(any),
        false => keys
            .iter()
            .zip(nulls.iter())
            .filter(|(_, valid)| *valid)
            .map(|(&k, _)| k as u32)
            .max(),
    };
    let keys = Int32Array::new(ScalarBuffer::from(keys), Some(nulls));
    checked_dictionary(keys, largest, values)
}

/// The dictionary array of `keys` and `values`, given the largest key not null as an
/// unsigned number (`None`: every key is null). A key out of `0..values.len()` (a negative
/// one is a large unsigned number) is an error, as `DictionaryArray::try_new` has it.
fn checked_dictionary(
    keys: Int32Array,
    largest: Option<u32>,
    values: &[&str],
) -> Result<ArrayRef, arrow_schema::ArrowError> {
    if let Some(k) = largest.filter(|&k| k as usize >= values.len()) {
        return Err(arrow_schema::ArrowError::InvalidArgumentError(format!(
            "dictionary key {} out of range for {} values",
            k as i32,
            values.len()
        )));
    }
    let values: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
    // SAFETY: every key that is not null was checked above to index `values`.
    Ok(Arc::new(unsafe {
        DictionaryArray::<Int32Type>::new_unchecked(keys, values)
    }))
}

/// A dictionary array of any strings: the distinct values are collected as they come.
pub fn dictionary_of<'a>(
    strings: impl Iterator<Item = Option<&'a str>>,
) -> Result<ArrayRef, arrow_schema::ArrowError> {
    let mut index: rustc_hash::FxHashMap<&str, i32> = Default::default();
    let mut values: Vec<&str> = Vec::new();
    let keys: Vec<Option<i32>> = strings
        .map(|s| {
            s.map(|s| {
                *index.entry(s).or_insert_with(|| {
                    values.push(s);
                    values.len() as i32 - 1
                })
            })
        })
        .collect();
    dictionary(keys.into_iter(), &values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;

    #[test]
    fn device_ids_are_canonical_text() {
        let a = device_ids([Some(0x00DB_1234_5678_90A0u64), None].into_iter());
        let s = a.as_string::<i32>();
        assert_eq!(s.value(0), "00-DB-12-34-56-78-90-A0");
        assert!(s.is_null(1));
    }

    /// Keys are checked as `DictionaryArray::try_new` checks them: a key past the values or
    /// below zero is an error, a null key is not looked at.
    #[test]
    fn dictionary_keys_out_of_range_are_errors() {
        let v = ["a", "b"];
        assert!(dictionary([Some(0), None, Some(1)].into_iter(), &v).is_ok());
        assert!(dictionary([Some(0), Some(2)].into_iter(), &v).is_err());
        assert!(dictionary([Some(-1), Some(1)].into_iter(), &v).is_err());
        assert!(dictionary([None, None].into_iter(), &[]).is_ok());
        assert!(dictionary([Some(0)].into_iter(), &[]).is_err());
        assert!(dictionary_of_keys(vec![0, 1, 1], &v).is_ok());
        assert!(dictionary_of_keys(vec![0, 2], &v).is_err());
        assert!(dictionary_of_keys(vec![-1], &v).is_err());
        assert!(dictionary_of_keys(vec![], &[]).is_ok());
        // Gathered keys with their nulls: a null's key is not looked at.
        let nulls = |v: &[bool]| Some(NullBuffer::from(v.to_vec()));
        let a = dictionary_with_nulls(vec![0, 7, 1], nulls(&[true, false, true]), &v).unwrap();
        assert_eq!(a.null_count(), 1);
        assert!(dictionary_with_nulls(vec![0, 7], nulls(&[true, true]), &v).is_err());
        assert!(dictionary_with_nulls(vec![0, 7], None, &v).is_err());
        assert!(dictionary_with_nulls(vec![3], nulls(&[false]), &[]).is_ok());
        assert!(dictionary_with_nulls(vec![0, -1, 1], nulls(&[true, false, true]), &v).is_ok());
        assert!(dictionary_with_nulls(vec![0, -1, 1], nulls(&[true, true, true]), &v).is_err());
        let a = dictionary_of_keys(vec![1, 0], &v).unwrap();
        let d = a.as_dictionary::<Int32Type>();
        assert_eq!(d.keys().values().to_vec(), [1, 0]);
        assert_eq!(d.null_count(), 0);
    }

    /// The largest key, as unsigned numbers, whatever the instruction set found: every
    /// length around the vector widths, negative keys (the largest unsigned) included.
    #[test]
    fn the_largest_key_is_found_at_every_length() {
        let mut x = 0x9E37_79B9u32;
        for n in 0..300usize {
            let keys: Vec<i32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 1000) as i32 - if x.is_multiple_of(97) { 2000 } else { 0 }
                })
                .collect();
            let want = keys.iter().map(|&k| k as u32).max().unwrap_or(0);
            assert_eq!(largest_key(&keys), want, "{n} keys");
        }
    }

    #[test]
    fn dictionaries_keep_their_values() {
        let a = dictionary_of([Some("b"), Some("a"), None, Some("b")].into_iter()).unwrap();
        let d = a.as_dictionary::<Int32Type>();
        assert_eq!(d.values().len(), 2);
        let keys: Vec<Option<i32>> = d.keys().iter().collect();
        assert_eq!(keys, [Some(0), Some(1), None, Some(0)]);
        let t = timestamp_micros(vec![1_704_067_200_000_000]);
        assert_eq!(t.data_type(), &timestamp_type());
    }
}
