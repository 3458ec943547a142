//! GNU build-id notes: reading a file's build-id, writing dependency notes.
