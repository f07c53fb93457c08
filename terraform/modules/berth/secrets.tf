# The Ed25519 key that signs registry tokens. By default the module makes
# none: berth creates the key on its first start and keeps it in the
# DynamoDB table (a create-only write, so functions starting at once agree
# on one key), and every function and the upload host read it from there.
# With var.token_key_secret_arn, the key comes from that Secrets Manager
# secret (a PKCS#8 PEM) as BERTH_AUTH_TOKEN_KEY instead.

data "aws_secretsmanager_secret_version" "token_key" {
  count     = var.token_key_secret_arn == null ? 0 : 1
  secret_id = var.token_key_secret_arn
}

locals {
  token_key_env = (var.token_key_secret_arn == null
    ? {}
  : { BERTH_AUTH_TOKEN_KEY = data.aws_secretsmanager_secret_version.token_key[0].secret_string })
}
