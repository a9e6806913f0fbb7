//go:build race

package dkls23test

const raceEnabled = true
