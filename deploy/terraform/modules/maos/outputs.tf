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
}
