# The Ed25519 key that signs registry tokens, shared by every function and
# the upload host (BERTH_AUTH_TOKEN_KEY, a PKCS#8 PEM). Generated here
# unless var.token_key_secret_arn names an existing secret. A generated key
# is in the Terraform state too: keep the state encrypted and private.

resource "tls_private_key" "token" {
  count     = var.token_key_secret_arn == null ? 1 : 0
  algorithm = "ED25519"
}

resource "aws_secretsmanager_secret" "token_key" {
  #checkov:skip=CKV2_AWS_57:berth verifies tokens with one key, so rotation means a new key and a redeploy (tokens live at most auth.token_ttl_secs); rotate by replacing tls_private_key.token.
  count                   = var.token_key_secret_arn == null ? 1 : 0
  name                    = "${var.name}/token-key"
  description             = "berth ${var.name}: Ed25519 PKCS#8 PEM that signs registry tokens (BERTH_AUTH_TOKEN_KEY)"
  kms_key_id              = aws_kms_key.berth.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "token_key" {
  count         = var.token_key_secret_arn == null ? 1 : 0
  secret_id     = aws_secretsmanager_secret.token_key[0].id
  secret_string = tls_private_key.token[0].private_key_pem_pkcs8
}

data "aws_secretsmanager_secret_version" "token_key" {
  count     = var.token_key_secret_arn == null ? 0 : 1
  secret_id = var.token_key_secret_arn
}

locals {
  token_key_secret_arn = var.token_key_secret_arn == null ? aws_secretsmanager_secret.token_key[0].arn : var.token_key_secret_arn
  token_key_pem = (var.token_key_secret_arn == null
    ? aws_secretsmanager_secret_version.token_key[0].secret_string
  : data.aws_secretsmanager_secret_version.token_key[0].secret_string)
}
