//! Prints the inventory of a directory (packed into one in-memory layer) or
//! of layer blobs given in order, as JSON: the manual check against syft.
//!
//! cargo run -p berth-scanner --example inventory -- <dir | layer.tar[.gz]...>

use std::io::Cursor;

use berth_scanner::{Layer, Limits, inventory};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut layers = Vec::new();
    for arg in &args {
        let path = std::path::Path::new(arg);
        let bytes = if path.is_dir() {
            let mut builder = tar::Builder::new(Vec::new());
            builder.follow_symlinks(false);
            builder.append_dir_all(".", path)?;
            builder.into_inner()?
        } else {
            std::fs::read(path)?
        };
        layers.push(Layer::new("application/vnd.oci.image.layer.v1.tar", Cursor::new(bytes)));
    }
    let inv = inventory(layers, &Limits::default())?;
    println!("{}", serde_json::to_string_pretty(&inv)?);
    Ok(())
}
