//! The gRPC edge (`handoff.v1`, see API.md). For now it holds only the
//! generated protobuf types; the tonic services that validate input and map
//! errors to `Status` come with the node.

/// Generated from `proto/handoff/v1/handoff.proto`: messages, enums, client
/// and server stubs. Conversions to and from engine types live beside the
/// services, never in the engine.
pub mod pb {
    tonic::include_proto!("handoff.v1");

    /// The encoded file descriptor set of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("handoff_descriptor");
}

#[cfg(test)]
mod tests {
    use prost::Message;

    /// Reflection shows exactly the public API: both services, no storage
    /// records.
    #[test]
    fn the_descriptor_set_holds_the_api_and_nothing_else() {
        let set = prost_types::FileDescriptorSet::decode(super::pb::FILE_DESCRIPTOR_SET)
            .expect("a valid descriptor set");
        let files: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        // Imports are included, so reflection clients resolve every type.
        assert_eq!(
            files,
            [
                "google/protobuf/timestamp.proto",
                "handoff/v1/handoff.proto"
            ]
        );
        let services: Vec<&str> = set.file[1].service.iter().map(|s| s.name()).collect();
        assert_eq!(services, ["Lifecycle", "Escalations"]);
    }
}
