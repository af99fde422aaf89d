//! OCI image layouts, configs, manifests, indexes and archives.
