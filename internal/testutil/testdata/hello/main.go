// Command hello is the program BuildBinaries' own tests build.
package main

import "fmt"

func main() { fmt.Println("hello from a built program") }
