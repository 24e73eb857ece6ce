package models

import (
	"errors"
	"fmt"
)

// Domain errors. The app maps each of them to one HTTP status in one place;
// wrap them with %w to add context.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrForbidden    = errors.New("forbidden")
	ErrUnauthorized = errors.New("unauthorized")
)

// FieldError names one invalid input field and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError is an ErrInvalid carrying the per-field messages, so forms
// can show each message next to its field and the API can list them.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	if len(e.Fields) == 0 {
		return "invalid input"
	}
	return fmt.Sprintf("invalid input: %s %s", e.Fields[0].Field, e.Fields[0].Message)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Add records a message for a field.
func (e *ValidationError) Add(field, msg string) { e.Fields = append(e.Fields, FieldError{field, msg}) }

// Err returns e when it holds at least one message, and nil otherwise.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Map returns the messages keyed by field (the first message per field).
func (e *ValidationError) Map() map[string]string {
	m := make(map[string]string, len(e.Fields))
	for _, f := range e.Fields {
		if _, ok := m[f.Field]; !ok {
			m[f.Field] = f.Message
		}
	}
	return m
}

// Invalid returns a ValidationError with one message.
func Invalid(field, msg string) error {
	return &ValidationError{Fields: []FieldError{{field, msg}}}
}
