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
}
