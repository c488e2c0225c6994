# Outputs of the MAOS module.

output "release_name" {
  description = "Name of the Helm release."
  value       = helm_release.maos.name
}

output "namespace" {
  description = "Namespace MAOS runs in."
  value       = helm_release.maos.namespace
}

output "service_url" {
  description = "In-cluster base URL of the MAOS API: https on the Service port 80 when tls_secret is set."
  value       = var.tls_secret == null ? "http://${local.fullname}.${var.namespace}.svc.cluster.local" : "https://${local.fullname}.${var.namespace}.svc.cluster.local:80"
}

output "secret_name" {
  description = "Secret the pods read their secret environment from."
  value       = local.secret_name

  # Checked here, on inputs alone, so the plan fails before anything is created (a variable
  # validation naming another variable needs Terraform 1.9).
  precondition {
    # The module writes database_url only into the Secret it creates: next to an existing Secret it
    # would be dropped without a word, and the pods would run on that Secret's MAOS_STORE__URL.
    condition     = var.existing_secret_name == null || nonsensitive(var.database_url == null)
    error_message = "database_url is set together with existing_secret_name, whose Secret the pods read instead of the module's: the URL would be ignored. Put MAOS_STORE__URL in that Secret and leave database_url null, or leave existing_secret_name null."
  }
  precondition {
    # Likewise secret_env: the variables would never reach the pods (an audit signing key, a KEK ring).
    condition     = var.existing_secret_name == null || nonsensitive(length(var.secret_env) == 0)
    error_message = "secret_env is set together with existing_secret_name, whose Secret the pods read instead of the module's: its variables would be ignored. Put them in that Secret and leave secret_env empty, or leave existing_secret_name null."
  }
  # The chart reads the module's Secret as existingSecret, which it cannot look into: a database URL
  # there in sqlite mode would have the one pod run on that database while the chart renders SQLite
  # mode (one replica, Recreate, a PVC). The chart's check-store init container stops such a pod;
  # the plan fails first.
  precondition {
    condition     = var.database_mode != "sqlite" || nonsensitive(var.database_url == null)
    error_message = "database_url is set but database_mode is sqlite: the one pod would run on that database while the chart renders SQLite mode (one replica, Recreate, a PVC for the database). Set database_mode = \"postgres\" to run on it (the pods then share it and scale out), or leave database_url null to keep the SQLite file on the PVC."
  }
  precondition {
    # In postgres mode the module writes database_url as MAOS_STORE__URL, over one in secret_env; in
    # sqlite mode only a sqlite: path keeps the pod on SQLite (as config.store.url in the chart). A
    # MAOS_STORE__URL_FILE names a file the plan cannot read, which may hold a sqlite: path as the
    # server reads it: in sqlite mode the chart's check-store init container reads it in the pod.
    condition = nonsensitive(var.database_mode == "sqlite" ? (
      startswith(lookup(var.secret_env, "MAOS_STORE__URL", "sqlite:"), "sqlite:")
    ) : length(setintersection(keys(var.secret_env), ["MAOS_STORE__URL", "MAOS_STORE__URL_FILE"])) == 0)
    error_message = "secret_env holds MAOS_STORE__URL (other than a sqlite: path) or, in postgres mode, MAOS_STORE__URL_FILE: the database URL is database_url, with database_mode = \"postgres\" (in sqlite mode the one pod would run on that database while the chart renders SQLite mode; in postgres mode database_url is written over it)."
  }
}
