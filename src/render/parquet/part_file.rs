//! One Parquet file's making: the layout every file of a kind shares (`FileLayout`), each
//! column encoded by a hand-written encoder where one takes it (`encode_columns`), and the
//! file written by parquet-rs's file writer when a column needs its column writer
//! (`PartFile`). Files whose every column was hand-written are written by `direct` instead;
//! `dataset` decides, and names and commits the files.

use super::ParquetError;
use super::columns::{ids_as_text, is_ids_as_numbers};
use super::pages::Chunk;
use super::{dictionary, int_dictionary, int64, plain_strings};
use arrow_array::{Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::Encoding;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnDescPtr, SchemaDescPtr, SchemaDescriptor, TypePtr};
use std::path::PathBuf;
use std::sync::Arc;

/// One file being written by parquet-rs's file writer (see `Dataset::create`).
///
/// Columns are encoded one by one (`encode_columns`): string dictionaries by
/// `dictionary::encode` (their keys as they are), 32-bit integers and dates by
/// `int_dictionary::encode`, 64-bit integers and times by `int64::encode`, plain strings
/// without statistics (device ids) by `plain_strings::encode`, every other column by
/// parquet-rs's Arrow column writer; what `ArrowWriter` does, without hashing every dictionary
/// value again or searching id pages for repeats.
pub struct PartFile {
    w: SerializedFileWriter<std::io::BufWriter<std::fs::File>>,
    columns: ArrowRowGroupWriterFactory,
    layout: FileLayout,
    row_groups: usize,
    tmp: PathBuf,
    dest: PathBuf,
    rows: u64,
}

impl PartFile {
    /// A file at `tmp` (renamed to `dest` at the commit) written by parquet-rs's file
    /// writer.
    pub(super) fn open(
        tmp: PathBuf,
        dest: PathBuf,
        layout: &FileLayout,
    ) -> Result<PartFile, ParquetError> {
        let file = std::fs::File::create(&tmp).map_err(ParquetError::io(&tmp, "create"))?;
        // Small: column chunks larger than the buffer go straight to the file, and a buffer of
        // a megabyte a file was faulted in afresh for every file.
        let out = std::io::BufWriter::with_capacity(1 << 16, file);
        let w = SerializedFileWriter::new(out, layout.parquet.clone(), layout.props.clone())
            .map_err(|cause| ParquetError::parquet(&tmp, cause))?;
        let columns = ArrowRowGroupWriterFactory::new(&w, layout.file_schema.clone());
        Ok(PartFile {
            w,
            columns,
            layout: layout.clone(),
            row_groups: 0,
            tmp,
            dest,
            rows: 0,
        })
    }

    /// Writes the footer and flushes the file; returns its temporary and final paths and
    /// its rows.
    pub(super) fn finish(self) -> Result<(PathBuf, PathBuf, u64), ParquetError> {
        let PartFile {
            w, tmp, dest, rows, ..
        } = self;
        let out = w
            .into_inner()
            .map_err(|cause| ParquetError::parquet(&tmp, cause))?;
        out.into_inner()
            .map_err(|e| ParquetError::io(&tmp, "write")(e.into_error()))?;
        Ok((tmp, dest, rows))
    }

    /// Writes a batch as one row group.
    pub fn write(&mut self, b: &RecordBatch) -> Result<(), ParquetError> {
        let chunks =
            encode_columns(&self.layout, b).map_err(|c| ParquetError::parquet(&self.tmp, c))?;
        self.write_chunks(b, chunks)
    }

    /// Writes a batch as one row group, the columns in `chunks` as they were encoded.
    pub(super) fn write_chunks(
        &mut self,
        b: &RecordBatch,
        chunks: Vec<Option<Chunk>>,
    ) -> Result<(), ParquetError> {
        let tmp = self.tmp.clone();
        self.write_row_group(b, chunks)
            .map_err(|cause| ParquetError::parquet(&tmp, cause))?;
        self.rows += b.num_rows() as u64;
        Ok(())
    }

    fn write_row_group(
        &mut self,
        b: &RecordBatch,
        chunks: Vec<Option<Chunk>>,
    ) -> parquet::errors::Result<()> {
        // One writer a leaf column, in order (a nested field has several).
        let mut writers = self
            .columns
            .create_column_writers(self.row_groups)?
            .into_iter();
        self.row_groups += 1;
        let mut rg = self.w.next_row_group()?;
        let fields = self
            .layout
            .schema
            .fields()
            .iter()
            .zip(self.layout.file_schema.fields());
        for ((field, file_field), (array, chunk)) in fields.zip(b.columns().iter().zip(chunks)) {
            if let Some(chunk) = chunk {
                rg.append_column(&chunk.bytes, chunk.close)?;
                writers.next(); // this column's Arrow writer is not needed
                continue;
            }
            // Ids given as numbers that no hand-written encoder took: as text, like any string.
            let text;
            let array = match array.as_any().downcast_ref::<UInt64Array>() {
                Some(numbers) if is_ids_as_numbers(field) => {
                    text = ids_as_text(numbers);
                    &text
                }
                _ => array,
            };
            for leaf in compute_leaves(file_field, array)? {
                let Some(mut w) = writers.next() else {
                    return Err(parquet::errors::ParquetError::General(
                        "more leaf columns than the schema has".into(),
                    ));
                };
                w.write(&leaf)?;
                w.close()?.append_to_row_group(&mut rg)?;
            }
        }
        rg.close()?;
        Ok(())
    }
}

/// Each column of `b` as a chunk one of the hand-written encoders wrote (`hand_written`), or
/// `None` where none takes it (parquet-rs's column writer does then).
pub(super) fn encode_columns(
    layout: &FileLayout,
    b: &RecordBatch,
) -> parquet::errors::Result<Vec<Option<Chunk>>> {
    if b.schema().fields() != layout.schema.fields() {
        return Err(parquet::errors::ParquetError::General(
            "the batch's schema is not the file's".into(),
        ));
    }
    let descrs = layout.descr.columns();
    // Nested fields have several leaf columns: parquet-rs writes those.
    if descrs.len() != b.num_columns() {
        return Ok(b.columns().iter().map(|_| None).collect());
    }
    let fields = layout.schema.fields().iter().zip(b.columns());
    fields
        .zip(descrs)
        .map(|((field, array), descr)| hand_written(field, array.as_ref(), descr, &layout.props))
        .collect()
}

/// The schema of a file whose batches have `batch`: device ids given as numbers
/// (`columns::device_id_field`) are `Utf8` text in the file, without the batch's marker.
pub fn file_schema(batch: &SchemaRef) -> SchemaRef {
    if !batch.fields().iter().any(|f| is_ids_as_numbers(f)) {
        return batch.clone();
    }
    let fields: Vec<Field> = batch
        .fields()
        .iter()
        .map(|f| match is_ids_as_numbers(f) {
            true => Field::new(f.name(), DataType::Utf8, f.is_nullable()),
            false => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, batch.metadata().clone()))
}

/// What every file of one kind shares: the batches' schema, the file's, its Parquet schema
/// and the writer settings with the Arrow schema in their metadata (as `ArrowWriter` stores
/// it, for readers that want the Arrow types back). Made once per kind of file, not
/// converted and encoded again for every file.
#[derive(Clone)]
pub struct FileLayout {
    schema: SchemaRef,
    file_schema: SchemaRef,
    parquet: TypePtr,
    descr: SchemaDescPtr,
    props: Arc<WriterProperties>,
}

impl FileLayout {
    /// The layout of files of batches with `schema`, written with `props`.
    pub fn new(schema: SchemaRef, props: &WriterProperties) -> parquet::errors::Result<FileLayout> {
        let mut props = props.clone();
        let file_schema = file_schema(&schema);
        add_encoded_arrow_schema_to_metadata(&file_schema, &mut props);
        let parquet = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&file_schema)?
            .root_schema_ptr();
        Ok(FileLayout {
            schema,
            file_schema,
            descr: Arc::new(SchemaDescriptor::new(parquet.clone())),
            parquet,
            props: Arc::new(props),
        })
    }

    /// The batches' schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The files' Parquet schema.
    pub fn parquet(&self) -> &TypePtr {
        &self.parquet
    }

    /// The files' columns.
    pub fn descr(&self) -> &SchemaDescPtr {
        &self.descr
    }

    /// The writer settings, the Arrow schema in their metadata.
    pub fn props(&self) -> &WriterProperties {
        &self.props
    }
}

/// The chunk of a column one of the hand-written encoders takes, if one does, in a codec
/// they write: 32-bit integers or dates with dictionary encoding on, or 64-bit integers or
/// times with it off, DELTA_BINARY_PACKED or PLAIN (statistics per chunk at most); or, without
/// statistics, a string dictionary with dictionary encoding on or a plain string column with
/// it off.
fn hand_written(
    field: &Field,
    array: &dyn Array,
    descr: &ColumnDescPtr,
    props: &WriterProperties,
) -> parquet::errors::Result<Option<Chunk>> {
    let path = descr.path();
    let compression = props.compression(path);
    let dictionary_enabled = props.dictionary_enabled(path);
    let statistics = props.statistics_enabled(path);
    // The integer encoders record statistics per chunk at most.
    if statistics != EnabledStatistics::Page {
        let chunk_statistics = statistics == EnabledStatistics::Chunk;
        // Integers and dates close together.
        if dictionary_enabled && int_dictionary::supported(array, compression) {
            return int_dictionary::encode(array, descr.clone(), compression, chunk_statistics);
        }
        // 64-bit integers and times: DELTA_BINARY_PACKED when the column asks for it, PLAIN
        // otherwise.
        let encoding = props.encoding(path).unwrap_or(Encoding::PLAIN);
        if !dictionary_enabled && int64::supported(array, compression, encoding) {
            let chunk = int64::encode(
                array,
                descr.clone(),
                compression,
                chunk_statistics,
                encoding,
            )?;
            if chunk.is_some() {
                return Ok(chunk);
            }
        }
    }
    if statistics != EnabledStatistics::None {
        return Ok(None);
    }
    // Text in the file: strings, or device ids given as numbers.
    let text = field.data_type() == &DataType::Utf8 || is_ids_as_numbers(field);
    match field.data_type() {
        DataType::Dictionary(..)
            if dictionary_enabled
                && dictionary::supported(
                    array,
                    compression,
                    props.dictionary_page_size_limit(),
                ) =>
        {
            dictionary::encode(array, descr.clone(), compression).map(Some)
        }
        _ if text && !dictionary_enabled && plain_strings::supported(array, compression) => {
            plain_strings::encode(
                array,
                descr.clone(),
                compression,
                props.data_page_row_count_limit(),
                props.column_data_page_size_limit(path),
            )
            .map(Some)
        }
        _ => Ok(None),
    }
}
