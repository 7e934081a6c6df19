//! The objects `up` installs (issue 3): typed k8s-openapi values.
