//! From bytes to judged rows, knowing nothing of SFTP or the store:
//! [`decode`] turns a file into records (encoding, delimiter, quoting, row
//! numbers), [`schema`] says which fields exist and what headers name them,
//! [`headers`] maps a header row to fields, [`validate`] judges one row,
//! [`plan`] applies the rules that need the whole file, [`layout`] knows
//! the export layouts of directory and HR systems, [`cell`] what one cell
//! says; [`names`] says which
//! file names are temporary upload names. Errors are
//! [`error::FileError`] (refuse the file) and [`error::RowError`] (fail a row).

pub mod bulk;
pub mod cell;
pub mod decode;
pub mod error;
pub mod headers;
pub mod layout;
pub mod names;
pub mod plan;
pub mod schema;
pub mod validate;
