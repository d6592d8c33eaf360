// Generates the ext_proc client types from the repository's own proto/ directory (one copy of the
// protos in the project). Well-known types come from libprotobuf-dev's /usr/include.
fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let proto_root = manifest.join("../../../proto").canonicalize().expect("repo proto/ directory");
    let include_wkt = std::env::var("EPP_PROTO_WKT_INCLUDE").unwrap_or_else(|_| "/usr/include".into());
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", "/usr/bin/protoc");
    }
    let main_proto = proto_root.join("envoy/service/ext_proc/v3/external_processor.proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&[main_proto], &[proto_root, include_wkt.into()])
        .expect("protoc failed (PROTOC=/usr/bin/protoc, libprotobuf-dev for google/protobuf/*.proto)");
}
