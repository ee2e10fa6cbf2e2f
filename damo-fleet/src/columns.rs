//! One table's columns as arrow arrays, with the types every engine reads: integers are
//! INT64 (Spark, Trino and BigQuery have no unsigned types; addresses and CLOCK_MONOTONIC
//! nanoseconds fit), text is UTF-8, rates are DOUBLE.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::{ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema};

/// A table being built: its name and its columns in order.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

/// A value as INT64, or an error naming it (a u64 above `i64::MAX` has no column type).
pub fn int(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value).with_context(|| format!("{what} {value:#x} does not fit a signed 64-bit column"))
}

impl Table {
    pub fn new(name: &'static str) -> Self {
        Self { name, fields: Vec::new(), columns: Vec::new() }
    }

    fn push(mut self, field: Field, column: ArrayRef) -> Self {
        self.fields.push(field);
        self.columns.push(column);
        self
    }

    pub fn int(self, name: &str, values: Vec<i64>) -> Self {
        self.push(Field::new(name, DataType::Int64, false), Arc::new(Int64Array::from(values)))
    }

    pub fn opt_int(self, name: &str, values: Vec<Option<i64>>) -> Self {
        self.push(Field::new(name, DataType::Int64, true), Arc::new(Int64Array::from(values)))
    }

    pub fn float(self, name: &str, values: Vec<f64>) -> Self {
        self.push(Field::new(name, DataType::Float64, false), Arc::new(Float64Array::from(values)))
    }

    pub fn opt_float(self, name: &str, values: Vec<Option<f64>>) -> Self {
        self.push(Field::new(name, DataType::Float64, true), Arc::new(Float64Array::from(values)))
    }

    pub fn str<S: AsRef<str>>(self, name: &str, values: &[S]) -> Self {
        self.push(Field::new(name, DataType::Utf8, false), Arc::new(StringArray::from_iter_values(values)))
    }

    pub fn opt_str(self, name: &str, values: Vec<Option<&str>>) -> Self {
        self.push(Field::new(name, DataType::Utf8, true), Arc::new(StringArray::from(values)))
    }

    /// A list of structs per row: `items` holds every row's items in order (built with
    /// [`Table`]'s own methods, its name unused), `lengths` how many belong to each row.
    pub fn list(self, name: &str, items: Table, lengths: impl IntoIterator<Item = usize>) -> Result<Self> {
        let fields = Fields::from(items.fields);
        let values = StructArray::try_new(fields.clone(), items.columns, None).with_context(|| format!("column {name}"))?;
        let item = Arc::new(Field::new("item", DataType::Struct(fields), false));
        let list = ListArray::try_new(item.clone(), OffsetBuffer::from_lengths(lengths), Arc::new(values), None).with_context(|| format!("column {name}"))?;
        Ok(self.push(Field::new(name, DataType::List(item), false), Arc::new(list)))
    }

    pub fn batch(self) -> Result<RecordBatch> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.columns).with_context(|| format!("table {}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn builds_typed_columns_and_lists() {
        let items = Table::new("").str("function", &["leaf", "main", "only"]).int("line", vec![3, 10, 0]);
        let t = Table::new("t").int("id", vec![1, 2]).opt_str("who", vec![Some("a"), None]).list("frames", items, [2, 1]).unwrap();
        let b = t.batch().unwrap();
        assert_eq!(b.num_rows(), 2);
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "who", "frames"]);
        let frames = b.column(2).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(frames.value_length(0), 2);
        assert_eq!(frames.value_length(1), 1);
        assert!(b.column(1).is_null(1));
        assert!(Table::new("bad").int("a", vec![1]).int("b", vec![1, 2]).batch().is_err(), "columns of different lengths");
        assert!(int(u64::MAX, "address").unwrap_err().to_string().contains("0xffffffffffffffff"));
    }
}
