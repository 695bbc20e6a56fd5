//go:build !unix

package test

import "os/exec"

// ownGroup does nothing where there are no process groups: killGroup kills cmd only.
func ownGroup(*exec.Cmd) {}

// killGroup kills cmd.
func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
