//! Generates the protobuf code: the public API (`handoff.v1`, with a file
//! descriptor set for server reflection) and the durable records
//! (`handoff.store.v1`, messages only). protoc comes from
//! `protoc-bin-vendored`, so nothing is installed by hand.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let config = || {
        let mut c = tonic_prost_build::Config::new();
        c.protoc_executable(&protoc);
        c
    };

    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("handoff_descriptor.bin"))
        .compile_with_config(config(), &["proto/handoff/v1/handoff.proto"], &["proto"])?;

    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_with_config(config(), &["proto/handoff/v1/store.proto"], &["proto"])?;

    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
