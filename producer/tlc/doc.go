// Package tlc reads NYC TLC trip files (Parquet and CSV, optionally gzipped) into codecs.Trip
// values, in file order, in batches.
//
// Parquet: the file is opened from an io.ReaderAt (local file or HDFS), its top-level columns
// are matched by name to codecs.Column, and each batch is filled column by column: for every
// column, the values of the batch are read with parquet-go's column-chunk value reader (which
// decodes dictionary pages) and written straight into the Trips. Reading column-wise avoids
// parquet-go's row reconstruction and reflection, and keeps the number of interface calls at
// one per column per batch. All three schema variants of TLC's green files (SOURCES.md) are
// handled by converting each column's physical type at read time: INT32/INT64/DOUBLE codes,
// the NULL logical type, missing optional columns.
//
// CSV: TLC's older CSV dumps (header line, CRLF, empty field = null) are read with the same
// result type; see OpenCSV.
package tlc
