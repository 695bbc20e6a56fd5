// Package device is an example device of the token model (docs/tokens.md), an MQTT 3.1.1 client
// on paho.mqtt.golang: it asks the example application server for rights, connects with
// "Token|<AccessKeyId>|<InstanceId>" and "<type>|<token>", subscribes and publishes, refreshes
// its token on the live connection with $SYS/uploadToken before it expires (or when
// $SYS/tokenExpireNotice arrives), and stops with ErrCutOff when its token is revoked
// ($SYS/tokenInvalidNotice code 3, or a reconnection refused with return code 4).
package device
